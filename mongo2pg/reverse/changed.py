"""What a set of captured changes names: per table the rows (by primary key) whose documents to rebuild,
and per junction source the documents whose link array to recompute (a link added or removed changes the
arrays on both sides, where the mapping reads it from both)."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from ..mapping import Junction, JunctionSource, Mapping


@dataclass
class Changed:
    rows: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))  # table -> primary keys
    # (junction, source) -> ids of the documents (the side the array does not hold) to recompute
    arrays: dict[tuple[str, JunctionSource], set[str]] = field(default_factory=lambda: defaultdict(set))

    def add(self, mapping: Mapping, tbl: str, pk: str | None, left: str | None, right: str | None) -> None:
        if tbl in mapping.tables:
            self.rows[tbl].add(pk)
            return
        j = mapping.junctions.get(tbl)
        if j is None:
            return  # a table the mapping no longer knows: nothing to write back
        for s in j.sources:
            self.arrays[(j.name, s)].add(left if s.holds == "right" else right)

    def __len__(self) -> int:
        return sum(map(len, self.rows.values())) + sum(map(len, self.arrays.values()))


def holder(mapping: Mapping, j: Junction, s: JunctionSource) -> tuple[str, str, str]:
    """For a junction source: the table whose documents hold the array, the junction column naming that
    document, and the column of the ids the array holds."""
    own, other = (j.left, j.right) if s.holds == "right" else (j.right, j.left)
    return mapping.by_collection[s.collection].name, own.column, other.column
