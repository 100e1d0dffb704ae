// The m:n calls a blog made on MongoDB, unchanged, through a Prisma 7 Client generated from `mongo2pg schema
// prisma`: connect and create through implicit m:n list fields (a self-relation among them), then read them
// back from both sides with include. Prints the result as JSON.
//   node blog_like_the_app.js CLIENT_DIR DATABASE_URL
"use strict";
const { PrismaClient } = require(process.argv[2]);
const { PrismaPg } = require("@prisma/adapter-pg");

const prisma = new PrismaClient({ adapter: new PrismaPg({ connectionString: process.argv[3] }) });

async function main() {
  const star = await prisma.user.create({ data: { email: "star@example.org" } });
  const fan = await prisma.user.create({
    data: { email: "fan@example.org", following: { connect: [{ id: star.id }] } },
  });
  const news = await prisma.category.create({ data: { name: "news-from-the-app" } });
  const post = await prisma.post.create({
    data: {
      slug: "hello", title: "Hello", body: "...", author: { connect: { id: fan.id } },
      categories: { connect: [{ id: news.id }], create: [{ name: "made-with-the-post" }] },
    },
  });
  const readPost = await prisma.post.findUnique({ where: { id: post.id }, include: { categories: true } });
  const readStar = await prisma.user.findUnique({ where: { id: star.id }, include: { followers: true } });
  const readFan = await prisma.user.findUnique({ where: { id: fan.id }, include: { following: true } });
  const readNews = await prisma.category.findUnique({ where: { id: news.id }, include: { posts: true } });
  const asJson = (k, v) => (typeof v === "bigint" ? v.toString() : v);  // BigInt views
  process.stdout.write(JSON.stringify({ readPost, readStar, readFan, readNews }, asJson));
}

main()
  .catch((e) => { process.stderr.write(String(e && e.message ? e.message : e) + "\n"); process.exitCode = 1; })
  .finally(() => prisma.$disconnect());
