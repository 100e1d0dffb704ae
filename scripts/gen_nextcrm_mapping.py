#!/usr/bin/env python3
"""Derive mongo2pg/mappings/nextcrm.yml from the two reference files beside it.

The reference files are facts read from NextCRM's repository (the Mongo-era Prisma
models and the PostgreSQL-era schema). Run once and review the output; the
migration policies (dangling references, missing values) are decided here.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent.parent / "mongo2pg" / "mappings"

JUNCTION_SOURCES = {
    "DocumentsToInvoices": [("Documents", "invoiceIDs", "right"), ("Invoices", "connected_documents", "left")],
    "DocumentsToOpportunities": [("Documents", "opportunityIDs", "right"),
                                 ("crm_Opportunities", "connected_documents", "left")],
    "DocumentsToContacts": [("Documents", "contactsIDs", "right"), ("crm_Contacts", "documentsIDs", "left")],
    "DocumentsToTasks": [("Documents", "tasksIDs", "right"), ("Tasks", "documentIDs", "left")],
    "DocumentsToCrmAccountsTasks": [("Documents", "crm_accounts_tasksIDs", "right")],
    "DocumentsToLeads": [("Documents", "leadsIDs", "right"), ("crm_Leads", "documentsIDs", "left")],
    "DocumentsToAccounts": [("Documents", "accountsIDs", "right"), ("crm_Accounts", "documentsIDs", "left")],
    "ContactsToOpportunities": [("crm_Contacts", "opportunitiesIDs", "right"),
                                ("crm_Opportunities", "connected_contacts", "left")],
    "AccountWatchers": [("crm_Accounts", "watchers", "right"), ("Users", "watching_accountsIDs", "left")],
    "BoardWatchers": [("Boards", "watchers", "right"), ("Users", "watching_boardsIDs", "left")],
}
TYPES = {"UUID": "uuid", "TEXT": "text", "INTEGER": "integer", "BIGINT": "bigint", "TIMESTAMP(3)": "timestamp",
         "BOOLEAN": "boolean", "JSONB": "jsonb", "TEXT[]": "text[]", "UUID[]": "uuid[]"}
CREATION_TIME_DEFAULTS = {"CURRENT_TIMESTAMP"}


def q(value: str) -> str:
    return json.dumps(value)


def main() -> int:
    model = json.loads((HERE / "nextcrm-mongodb-model.json").read_text())
    schema = json.loads((HERE / "nextcrm-postgresql-schema.json").read_text())
    fks = {(fk["table"], fk["columns"][0]): fk for fk in schema["foreign_keys"]}
    out = [
        "# NextCRM: MongoDB (Prisma, commit 013fb641) -> PostgreSQL (Prisma, commit 3ffff2a7).",
        "# Derived by scripts/gen_nextcrm_mapping.py from the reference files beside it, then reviewed.",
        "# Policies: a dangling optional reference becomes NULL (logged as a fix-up); a dangling",
        "# required reference rejects the record; a missing required value takes `fill`",
        "# (a literal, or `objectid_time`: the creation instant the ObjectId carries) or rejects.",
        "version: 1",
        "name: nextcrm",
        "enums:",
    ]
    for name, values in schema["enums"].items():
        out.append(f"  {name}: [{', '.join(values)}]")
    out.append("tables:")
    for table, tdef in schema["tables"].items():
        if table not in model["models"]:
            continue
        out.append(f"  {table}:")
        out.append(f"    collection: {table}")
        out.append("    columns:")
        for col in tdef["columns"]:
            name, pgtype = col["name"], col["type"]
            parts = [f"name: {name}"]
            if name == "id":
                parts.append("source: _id")
            if pgtype.startswith('"'):
                parts += ["type: enum", f"enum: {pgtype.strip(chr(34))}"]
            else:
                parts.append(f"type: {q(TYPES[pgtype]) if TYPES[pgtype].endswith(']') else TYPES[pgtype]}")
            if name == "id":
                parts.append("primary_key: true")
            elif col["not_null"]:
                parts.append("required: true")
            default = col.get("default")
            if default is not None:
                parts.append(f"default: {q(default)}")
                if col["not_null"]:
                    fill = "objectid_time" if default in CREATION_TIME_DEFAULTS else default.strip("'")
                    parts.append(f"fill: {q(fill) if not fill.lstrip('-').isdigit() and fill not in ('true', 'false') else fill}")
            fk = fks.get((table, name))
            if fk:
                parts.append(f"references: {fk['references']}")
                parts.append(f"on_delete: {fk['on_delete']}")
                parts.append(f"on_dangling: {'reject' if col['not_null'] else q('null')}")
            out.append("      - {" + ", ".join(parts) + "}")
        idx = [i for i in schema["indexes"] if i["table"] == table]
        out.append("    indexes:")
        for i in idx:
            uniq = ", unique: true" if i["unique"] else ""
            out.append(f"      - {{name: {i['name']}, columns: [{', '.join(i['columns'])}]{uniq}}}")
    out.append("junctions:")
    for table, sources in JUNCTION_SOURCES.items():
        cols = schema["tables"][table]["columns"]
        left, right = cols[0]["name"], cols[1]["name"]
        lref = fks[(table, left)]["references"]
        rref = fks[(table, right)]["references"]
        out.append(f"  {table}:")
        out.append(f"    left: {{column: {left}, references: {lref}}}")
        out.append(f"    right: {{column: {right}, references: {rref}}}")
        out.append("    sources:")
        for coll, field, holds in sources:
            out.append(f"      - {{collection: {coll}, field: {field}, holds: {holds}}}")
        out.append("    indexes:")
        for i in schema["indexes"]:
            if i["table"] == table:
                out.append(f"      - {{name: {i['name']}, columns: [{', '.join(i['columns'])}]}}")
    (HERE / "nextcrm.yml").write_text("\n".join(out) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
