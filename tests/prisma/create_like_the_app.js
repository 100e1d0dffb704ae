// The calls a MongoDB-era app makes, through a Prisma 7 Client generated from `mongo2pg schema prisma`:
// create a user without updatedAt, apiKey, image, role or lists (the client and the schema fill them),
// create an account nested under it, update it (updatedAt moves), read it back with its relations.
// Prints the result as JSON.   node create_like_the_app.js CLIENT_DIR DATABASE_URL
"use strict";
const { PrismaClient } = require(process.argv[2]);
const { PrismaPg } = require("@prisma/adapter-pg");

const prisma = new PrismaClient({ adapter: new PrismaPg({ connectionString: process.argv[3] }) });

async function main() {
  const user = await prisma.user.create({
    data: { email: "new@example.org", accounts: { create: { type: "oauth", provider: "github", providerAccountId: "42" } } },
  });
  await new Promise((r) => setTimeout(r, 20));
  const updated = await prisma.user.update({ where: { id: user.id }, data: { name: "Renamed" } });
  const read = await prisma.user.findUnique({ where: { id: user.id }, include: { accounts: true, sessions: true } });
  process.stdout.write(JSON.stringify({ created: user, updated, read }));
}

main()
  .catch((e) => { process.stderr.write(String(e && e.message ? e.message : e) + "\n"); process.exitCode = 1; })
  .finally(() => prisma.$disconnect());
