// LAB FIXTURE, not NextCRM: the PostgreSQL side of the lab's stand-in NextCRM app, on Prisma ORM 7.
// Its client is generated from `mongo2pg schema prisma` for the lab's mapping (scripts/labapp.sh does it),
// which keeps NextCRM's own Prisma names (assigned_to_user, watching_users, assigned_documents, ...)
// and reaches PostgreSQL through the driver adapter @prisma/adapter-pg: no engine binary. The endpoints
// and their answers are lab/nextcrm_standin.py's (which serves the MongoDB side), with queries shaped like
// NextCRM's: an account with its assigned user and its watchers through the junction; its contacts,
// opportunities and documents; the contacts of an opportunity through `some` on the junction; a
// case-insensitive search; a create with a nested junction create; dashboard counts in a $transaction.
//   node server.js --client DIR --env-file FILE --port N [--maintenance-flag FILE]
"use strict";
const fs = require("fs");
const http = require("http");
const { PrismaPg } = require("@prisma/adapter-pg");

function args() {
  const out = {};
  const argv = process.argv.slice(2);
  for (let i = 0; i < argv.length; i += 2) out[argv[i].replace(/^--/, "")] = argv[i + 1];
  return out;
}

function readEnvFile(path) {
  const env = {};
  for (let line of fs.readFileSync(path, "utf8").split("\n")) {
    line = line.trim();
    if (!line || line.startsWith("#") || !line.includes("=")) continue;
    const at = line.indexOf("=");
    env[line.slice(0, at).trim()] = line.slice(at + 1).trim().replace(/^["']|["']$/g, "");
  }
  return env;
}

const opts = args();
const { PrismaClient } = require(opts.client);
const url = readEnvFile(opts["env-file"]).DATABASE_URL || "";
const prisma = new PrismaClient({ adapter: new PrismaPg({ connectionString: url }) });
const version = require("@prisma/client/package.json").version;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

const account = (a) => ({ id: a.id, name: a.name, status: a.status });

async function listAccounts(limit) {
  const rows = await prisma.crm_Accounts.findMany({
    take: limit, orderBy: { id: "asc" },
    include: { assigned_to_user: { select: { id: true, name: true } },
               watching_users: { include: { user: { select: { id: true, name: true } } } } },
  });
  return rows.map((a) => ({ ...account(a), assigned_to: a.assigned_to_user, watchers: a.watching_users.map((w) => w.user) }));
}

async function getAccount(id) {
  if (!UUID.test(id)) return null;
  const a = await prisma.crm_Accounts.findUnique({
    where: { id },
    include: { contacts: { select: { id: true }, take: 50 },
               opportunities: { select: { id: true }, take: 50 },
               assigned_documents: { take: 50, include: { document: { select: { id: true, document_name: true } } } } },
  });
  return a && { ...account(a), contacts: a.contacts.length, opportunities: a.opportunities.length,
                documents: a.assigned_documents.map((d) => d.document) };
}

async function create(body) {
  const watchers = (body.watchers || []).filter((w) => UUID.test(w));
  const a = await prisma.crm_Accounts.create({
    data: { name: body.name || "", v: 0,
            ...(watchers.length ? { watching_users: { create: watchers.map((id) => ({ user: { connect: { id } } })) } } : {}) },
  });
  return a.id;
}

async function update(id, name) {
  if (!UUID.test(id)) return false;
  return (await prisma.crm_Accounts.updateMany({ where: { id }, data: { name } })).count === 1;
}

async function remove(id) {
  if (!UUID.test(id)) return false;
  return (await prisma.crm_Accounts.deleteMany({ where: { id } })).count === 1;
}

async function search(q) {
  const rows = await prisma.crm_Accounts.findMany({ where: { name: { contains: q, mode: "insensitive" } }, take: 20 });
  return rows.map((a) => ({ id: a.id, name: a.name }));
}

async function contactsOf(id) {
  if (!UUID.test(id)) return [];
  const rows = await prisma.crm_Contacts.findMany({ where: { accountsIDs: id }, take: 50 });
  return rows.map((c) => ({ id: c.id, last_name: c.last_name }));
}

async function contactsOfOpportunity(id) {
  if (!UUID.test(id)) return [];
  const rows = await prisma.crm_Contacts.findMany({ where: { assigned_opportunities: { some: { opportunity_id: id } } },
                                                    take: 50 });
  return rows.map((c) => ({ id: c.id, last_name: c.last_name }));
}

async function dashboard() {
  const [accounts, contacts, leads, opportunities] = await prisma.$transaction([
    prisma.crm_Accounts.count(), prisma.crm_Contacts.count(), prisma.crm_Leads.count(), prisma.crm_Opportunities.count()]);
  return { crm_Accounts: accounts, crm_Contacts: contacts, crm_Leads: leads, crm_Opportunities: opportunities };
}

async function route(req, parts, query, body) {
  const m = req.method;
  const inMaintenance = Boolean(opts["maintenance-flag"] && fs.existsSync(opts["maintenance-flag"]));
  if (parts.length === 1 && parts[0] === "health") {  // internal: answers in maintenance too
    return [200, { status: "ok", backend: "postgresql", orm: `prisma ${version}`, maintenance: inMaintenance }];
  }
  if (inMaintenance && !req.headers["x-maintenance-bypass"]) return [503, { status: "maintenance" }];
  const path = parts.join("/");
  if (path === "api/accounts" && m === "GET") return [200, await listAccounts(Number(query.get("limit") || 20))];
  if (path === "api/accounts" && m === "POST") return [201, { id: await create(body) }];
  if (parts.length === 3 && parts[0] === "api" && parts[1] === "accounts") {
    if (m === "GET") { const a = await getAccount(parts[2]); return a ? [200, a] : [404, { error: "not found" }]; }
    if (m === "PUT") return (await update(parts[2], body.name || "")) ? [200, { ok: true }] : [404, { error: "not found" }];
    if (m === "DELETE") return (await remove(parts[2])) ? [200, { ok: true }] : [404, { error: "not found" }];
  }
  if (parts.length === 4 && parts[0] === "api" && parts[1] === "accounts" && parts[3] === "contacts") {
    return [200, await contactsOf(parts[2])];
  }
  if (parts.length === 4 && parts[0] === "api" && parts[1] === "opportunities" && parts[3] === "contacts") {
    return [200, await contactsOfOpportunity(parts[2])];
  }
  if (path === "api/search") return [200, await search(query.get("q") || "")];
  if (path === "api/dashboard") return [200, await dashboard()];
  return [404, { error: "no such endpoint" }];
}

const server = http.createServer((req, res) => {
  let raw = "";
  req.on("data", (chunk) => { raw += chunk; });
  req.on("end", async () => {
    const u = new URL(req.url, "http://localhost");
    let code, body;
    try {
      [code, body] = await route(req, u.pathname.split("/").filter(Boolean), u.searchParams, raw ? JSON.parse(raw) : {});
    } catch (e) {  // a lab fixture answers 500 and keeps serving
      [code, body] = [500, { error: e && e.name ? e.name : "Error" }];
      process.stderr.write(`${new Date().toISOString()} ${req.method} ${u.pathname}: ${e && e.message}\n`);
    }
    const data = JSON.stringify(body);
    res.writeHead(code, { "Content-Type": "application/json", "Content-Length": Buffer.byteLength(data) });
    res.end(data);
    process.stderr.write(`${new Date().toISOString().slice(11, 19)} ${req.method} ${u.pathname}\n`);
  });
});

// Connect and plan the common queries before listening: the first smoke test must not pay for it.
prisma.crm_Accounts.findFirst({ select: { id: true } })
  .then(() => listAccounts(1))
  .then(() => {
    server.listen(Number(opts.port), "127.0.0.1", () => {
      console.log(`nextcrm-standin on Prisma ${version} (lab fixture) on 127.0.0.1:${opts.port}, backend postgresql`);
    });
  })
  .catch((e) => { process.stderr.write(`cannot start: ${e && e.message}\n`); process.exit(1); });
