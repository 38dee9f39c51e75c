"""The shapes of the queries a store issues, and whether an index serves each one.

Cost must stay flat as the register grows, so every query a service runs must be served by a
declared index. The embedded store cannot show a missing index by timing, so where
`EMBEDDED_STORE_QUERY_LOG` names a file it records each query's shape (the fields filtered
by equality, by range, and sorted on, never the values) with the collection's indexes at that
moment; the test suite checks every recorded shape with `uncovered`.

The rule, MongoDB's equality-sort-range guideline made strict: a query is served when it
selects by `_id`, or some index starts with its equality fields (in any order), continues with
its sort fields (in order) and then its range fields. A query with no filter and no
sort other than `_id` lists a whole collection in index order and counts as served (staff
listings; cost is in the size of the answer). Each branch of an `$or` must be served.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

EQUALITY_OPERATORS = frozenset({"$eq", "$in"})


@dataclass(frozen=True)
class Shape:
    equality: frozenset[str] = frozenset()
    ranges: frozenset[str] = frozenset()
    sort: tuple[str, ...] = ()
    alternatives: tuple[Shape, ...] = field(default=())

    def to_json(self) -> dict[str, Any]:
        return {
            "equality": sorted(self.equality),
            "ranges": sorted(self.ranges),
            "sort": list(self.sort),
            "alternatives": [alternative.to_json() for alternative in self.alternatives],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Shape:
        return cls(
            frozenset(data["equality"]),
            frozenset(data["ranges"]),
            tuple(data["sort"]),
            tuple(cls.from_json(a) for a in data["alternatives"]),
        )


def sort_fields(sort: Any) -> tuple[str, ...]:
    if not sort:
        return ()
    if isinstance(sort, str):
        return (sort,)
    if isinstance(sort, Mapping):
        return tuple(sort)
    return tuple(item[0] if isinstance(item, tuple | list) else item for item in sort)


def shape_of(query: Mapping[str, Any] | None, sort: Any = None) -> Shape:
    equality: set[str] = set()
    ranges: set[str] = set()
    alternatives: list[Shape] = []
    for key, value in (query or {}).items():
        if key == "$and":
            for part in value:
                inner = shape_of(part)
                equality |= inner.equality
                ranges |= inner.ranges
                alternatives.extend(inner.alternatives)
        elif key in ("$or", "$nor"):
            alternatives.extend(shape_of(part) for part in value)
        elif isinstance(value, Mapping) and any(str(k).startswith("$") for k in value):
            (equality if set(value) <= EQUALITY_OPERATORS else ranges).add(key)
        else:
            equality.add(key)
    return Shape(frozenset(equality), frozenset(ranges), sort_fields(sort), tuple(alternatives))


def _served_by(shape: Shape, keys: Sequence[str]) -> bool:
    """The index's leading keys are the equality fields, then the sort, then the ranges.

    A range on a sort field (`at >= since`, newest first) is bounded by that same index key.
    """
    keys = list(keys)
    ranges = shape.ranges - set(shape.sort)
    equality_end = len(shape.equality)
    sort_end = equality_end + len(shape.sort)
    return (
        set(keys[:equality_end]) == shape.equality
        and keys[equality_end:sort_end] == list(shape.sort)
        and set(keys[sort_end : sort_end + len(ranges)]) == ranges
    )


def is_served(shape: Shape, indexes: Iterable[Sequence[str]], parent: Shape | None = None) -> bool:
    combined = shape
    if parent is not None:  # an $or branch also carries the fields around the $or
        combined = Shape(
            shape.equality | parent.equality, shape.ranges | parent.ranges, parent.sort
        )
    if "_id" in combined.equality:
        return True
    if shape.alternatives:
        return all(is_served(branch, indexes, combined) for branch in shape.alternatives)
    if not combined.equality and not combined.ranges and combined.sort in ((), ("_id",)):
        return True
    return any(_served_by(combined, list(keys)) for keys in indexes)


class QueryLog:
    """Appends one JSON line per query to a file; several processes may share a directory."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._lock = threading.Lock()
        path.parent.mkdir(parents=True, exist_ok=True)

    def record(
        self,
        namespace: str,
        operation: str,
        query: Mapping[str, Any] | None,
        sort: Any,
        indexes: Iterable[Sequence[str]],
    ) -> None:
        line = json.dumps(
            {
                "namespace": namespace,
                "operation": operation,
                "shape": shape_of(query, sort).to_json(),
                "indexes": [list(keys) for keys in indexes],
            }
        )
        with self._lock, self._path.open("a") as log:
            log.write(line + "\n")


def uncovered(paths: Iterable[Path]) -> list[str]:
    """Every recorded query no index serves, described for a failure message."""
    problems = []
    for path in paths:
        for line in path.read_text().splitlines():
            entry = json.loads(line)
            shape = Shape.from_json(entry["shape"])
            if not is_served(shape, entry["indexes"]):
                problems.append(
                    f"{entry['namespace']} {entry['operation']} {entry['shape']} "
                    f"with indexes {entry['indexes']}"
                )
    return sorted(set(problems))
