"""Prisma applications: a mapping from a MongoDB-era schema.prisma (from_prisma), and the PostgreSQL-era
schema.prisma of a mapping (to_prisma). The schema is read by Prisma's own parser (dmmf)."""
