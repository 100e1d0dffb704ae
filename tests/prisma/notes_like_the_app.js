// The calls a notes app made on MongoDB, through a Prisma 7 Client generated from `mongo2pg schema prisma`:
// create an author with nested notes (the client makes the cuid and uuid ids, Prisma sets updatedAt), a
// reply through the self-relation, labels through the explicit m:n model (connectOrCreate), an update,
// and a findMany with nested includes. Prints the result as JSON.
//   node notes_like_the_app.js CLIENT_DIR DATABASE_URL
"use strict";
const { PrismaClient } = require(process.argv[2]);
const { PrismaPg } = require("@prisma/adapter-pg");

const prisma = new PrismaClient({ adapter: new PrismaPg({ connectionString: process.argv[3] }) });

async function main() {
  const author = await prisma.author.create({
    data: {
      email: "new@example.org",
      notes: { create: [{ title: "first" }, { title: "second" }] },
    },
    include: { notes: true },
  });
  const first = author.notes.find((n) => n.title === "first");
  const reply = await prisma.note.create({
    data: {
      title: "a reply", author: { connect: { id: author.id } }, parent: { connect: { id: first.id } },
      labels: { create: [{ label: { connectOrCreate: { where: { name: "work" }, create: { name: "work" } } } },
                         { label: { connectOrCreate: { where: { name: "fresh" }, create: { name: "fresh" } } } }] },
    },
  });
  await new Promise((r) => setTimeout(r, 20));
  const updated = await prisma.author.update({ where: { id: author.id }, data: { name: "Renamed" } });
  const read = await prisma.note.findMany({
    where: { authorId: author.id }, orderBy: { title: "asc" },
    include: { author: true, parent: true, replies: true, labels: { include: { label: true } } },
  });
  process.stdout.write(JSON.stringify({ author, reply, updated, read }));
}

main()
  .catch((e) => { process.stderr.write(String(e && e.message ? e.message : e) + "\n"); process.exitCode = 1; })
  .finally(() => prisma.$disconnect());
