// Reads every model of a database through a generated Prisma Client (driver adapter @prisma/adapter-pg),
// every relation included, page by page in primary-key order; writes one JSON line per row:
// {"model", "row": scalars, "relations": {field: [primary keys of the related rows]}}.
// The models come from the schema's full DMMF (mongo2pg.prisma.dmmf; the client's own is pared down).
//   node read_all.js CLIENT_DIR DATABASE_URL DMMF.json OUT.jsonl [PAGE]
"use strict";
const fs = require("fs");
const { PrismaClient } = require(process.argv[2]);
const { PrismaPg } = require("@prisma/adapter-pg");

const page = Number(process.argv[6] || 500);
const prisma = new PrismaClient({ adapter: new PrismaPg({ connectionString: process.argv[3] }) });
const dmmf = JSON.parse(fs.readFileSync(process.argv[4], "utf8"));
const out = fs.openSync(process.argv[5], "w");
// BigInt as its digits; Bytes (a Uint8Array) as {"$hex": ...}; `this[key]` is the value before toJSON.
const json = (value) => JSON.stringify(value, function (key, v) {
  const raw = this[key];
  if (raw instanceof Uint8Array) return { $hex: Buffer.from(raw).toString("hex") };
  return typeof v === "bigint" ? v.toString() : v;
});
const keyOf = (model) => model.primaryKey ? model.primaryKey.fields : model.fields.filter((f) => f.isId).map((f) => f.name);
const delegate = (name) => prisma[name.charAt(0).toLowerCase() + name.slice(1)];

async function main() {
  const models = Object.fromEntries(dmmf.datamodel.models.map((m) => [m.name, m]));
  for (const model of Object.values(models)) {
    const relations = model.fields.filter((f) => f.kind === "object");
    const key = keyOf(model);
    const include = Object.fromEntries(relations.map((r) => [r.name, true]));
    for (let skip = 0; ; skip += page) {
      const rows = await delegate(model.name).findMany({
        skip, take: page, orderBy: key.map((k) => ({ [k]: "asc" })),
        ...(relations.length ? { include } : {}),
      });
      for (const row of rows) {
        const scalars = {};
        const linked = {};
        for (const f of model.fields) {
          if (f.kind !== "object") scalars[f.name] = row[f.name];
        }
        for (const r of relations) {
          const targetKey = keyOf(models[r.type]);
          const items = r.isList ? row[r.name] : row[r.name] ? [row[r.name]] : [];
          linked[r.name] = items.map((item) => targetKey.map((k) => item[k]).join("|"));
        }
        fs.writeSync(out, json({ model: model.name, row: scalars, relations: linked }) + "\n");
      }
      if (rows.length < page) break;
    }
  }
}

main()
  .then(() => prisma.$disconnect())
  .catch(async (e) => {
    process.stderr.write(String(e && e.stack ? e.stack : e) + "\n");
    await prisma.$disconnect();
    process.exit(1);
  });
