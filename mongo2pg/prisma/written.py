"""The mapping from-prisma writes: its YAML (one line per column, index and source, as nextcrm.yml reads),
and the check that the engine reads it, a refusal told by the Prisma model and field it came from."""

from __future__ import annotations

from typing import Any

import yaml

from ..errors import MappingError
from ..mapping import Mapping, parse_mapping
from .shapes import UnsupportedPrisma


def check_mapping(mapping: dict[str, Any], text: str) -> Mapping:
    """The written mapping as the engine reads it; a refusal is told in the schema's terms (the model and
    field it came from), never as a line of a YAML file the user did not write."""
    try:
        return parse_mapping(text, "<from-prisma>")
    except MappingError as exc:
        raise UnsupportedPrisma(f"{_prisma_place(mapping, exc.where)}: {exc.reason}: a shape from-prisma does not "
                                "map yet. Fix: map this field by hand in a mapping (docs/prisma.md, 'Writing a "
                                "mapping by hand')") from None


def _prisma_place(mapping: dict[str, Any], where: tuple) -> str:
    """`Model.field` (or the junction's relation) for a key path of the mapping."""
    if len(where) >= 2 and where[0] == "tables" and where[1] in mapping["tables"]:
        t = mapping["tables"][where[1]]
        model = t.get("prisma", {}).get("model", where[1])
        if len(where) >= 4 and where[2] == "columns" and isinstance(where[3], int) and where[3] < len(t["columns"]):
            c = t["columns"][where[3]]
            return f"{model}.{c.get('prisma', {}).get('field', c.get('source', c['name']))}"
        return f"model {model}"
    if len(where) >= 2 and where[0] == "junctions" and where[1] in mapping.get("junctions", {}):
        return f"relation {mapping['junctions'][where[1]].get('prisma', {}).get('relation', where[1])}"
    return "the schema"


class _FlowDumper(yaml.SafeDumper):
    """Block style for the structure, one line per column, index and source (as nextcrm.yml reads)."""


def _flow_items(dumper, data):
    return dumper.represent_mapping("tag:yaml.org,2002:map", data.items(), flow_style=True)


class _Flow(dict):
    pass


_FlowDumper.add_representer(_Flow, _flow_items)


def mapping_yaml(mapping: dict[str, Any], header: str) -> str:
    """The mapping as YAML: columns, indexes, sides and sources one per line."""
    def flow(d: dict) -> _Flow:
        return _Flow({k: (_Flow(v) if isinstance(v, dict) else v) for k, v in d.items()})

    out = dict(mapping)
    if "enums" in mapping:
        out["enums"] = {k: _FlowList(v) for k, v in mapping["enums"].items()}
    tables = {}
    for tname, t in mapping["tables"].items():
        tables[tname] = {k: ([flow(c) for c in v] if k in ("columns", "indexes") else
                             flow(v) if k == "prisma" else v) for k, v in t.items()}
    out["tables"] = tables
    if "junctions" in mapping:
        out["junctions"] = {
            j: {k: (flow(v) if k in ("left", "right", "prisma") else [flow(x) for x in v]) for k, v in jd.items()}
            for j, jd in mapping["junctions"].items()}
    text = yaml.dump(out, Dumper=_FlowDumper, sort_keys=False, allow_unicode=True, width=120)
    return "".join(f"# {line}\n" for line in header.splitlines()) + text


class _FlowList(list):
    pass


_FlowDumper.add_representer(_FlowList, lambda d, data: d.represent_sequence("tag:yaml.org,2002:seq", data,
                                                                             flow_style=True))
