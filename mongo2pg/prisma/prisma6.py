"""A MongoDB-era schema.prisma is a Prisma 6 (or older) schema, and Prisma 7's parser, which reads it
here, refuses the connection settings those versions required in a datasource: `url`, `directUrl`,
`shadowDatabaseUrl` (Prisma 7 moved them to prisma.config.ts). Their values never reach a mapping, so
they are set aside as comments, each line kept in its place so that Prisma's messages still point at
the user's own line numbers. Everything else (previewFeatures, relationMode, ...) Prisma 7 reads as
written."""

from __future__ import annotations

import re

_DATASOURCE = re.compile(r"^\s*datasource\s+\w+\s*\{")
_CONNECTION = re.compile(r"^\s*(url|directUrl|shadowDatabaseUrl)\s*=")


def as_prisma7(text: str) -> str:
    """The schema with its datasources' Prisma 6 connection settings commented out (line count unchanged)."""
    out, depth = [], 0
    for line in text.split("\n"):
        if depth == 0 and _DATASOURCE.match(line):
            depth = line.count("{") - line.count("}")
        elif depth > 0:
            if _CONNECTION.match(line):
                line = "// (a Prisma 6 connection setting, not read here) " + line.strip()
            else:
                depth += line.count("{") - line.count("}")
        out.append(line)
    return "\n".join(out)
