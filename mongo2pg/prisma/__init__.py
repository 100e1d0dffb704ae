"""Prisma applications, both ways:

- `dmmf.py` (+ `dmmf.js`): a schema.prisma read by Prisma's own parser; `prisma6.py`: a MongoDB-era
  (Prisma 6) schema made one Prisma 7's parser reads
- `from_prisma.py`: the mapping of a MongoDB-era schema (tables, junctions, indexes), with `columns.py`
  (one field -> its column) over `shapes.py` (Prisma's types and actions, the schema by name) and
  `presets.py` (names MongoDB never had); `written.py`: the mapping's YAML and its check
- `to_prisma.py`: the PostgreSQL-era schema.prisma of a mapping
"""
