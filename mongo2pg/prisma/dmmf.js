// Prisma's own schema parser (npm @prisma/prisma-schema-wasm, installed by `make setup`): prints the
// DMMF of a schema.prisma as JSON on stdout; on a schema Prisma refuses, its message on stderr, exit 1.
//   node dmmf.js NAME < SCHEMA_TEXT   (NAME: the file's name, for Prisma's messages)
"use strict";
const fs = require("fs");
let wasm;
try {
  wasm = require("@prisma/prisma-schema-wasm");
} catch (e) {
  process.stderr.write("the npm package @prisma/prisma-schema-wasm is not installed: run `make setup`\n");
  process.exit(3);
}
const file = process.argv[2];
const text = fs.readFileSync(0, "utf8");
try {
  process.stdout.write(wasm.get_dmmf(JSON.stringify({ prismaSchema: [[file, text]] })));
} catch (e) {
  let message = String(e && e.message ? e.message : e);
  try {
    message = JSON.parse(message).message;
  } catch (_) {
    // not JSON: keep it as it is
  }
  process.stderr.write(message.replace(/\u001b\[[0-9;]*m/g, "") + "\n");
  process.exit(1);
}
