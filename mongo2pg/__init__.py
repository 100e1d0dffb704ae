"""mongo2pg: the MongoDB -> PostgreSQL migration engine (no Ansible import here).

Wings, each with an `__init__` that says what its files hold:
`source/` (readers, dump format, BSON codec), `transform/` (document -> COPY row and links),
`migration/` (the run), `validation/` (every record proven), `reverse/` (change capture and the lossless
rollback), `ops/` (backup, monitoring, estimate, final report), `prisma/` (Prisma schemas both ways),
`cli/` (the command line), `fixtures/` (the lab's sample data).

Shared primitives at the top: `ids` (the ObjectId <-> UUID rule), `mapping` (the spec), `schema` (DDL and
introspection), `connect` (connections), `options` (every run's options, stated once), `files` (private
writes), `errors`, `redact`, `issues` (the reject record), `stages` (timers), `workers`, `hostmem`,
`console`.
"""

__version__ = "0.1.0"
