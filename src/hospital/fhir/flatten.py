"""The shipped ViewDefinitions and turning resources into table rows (pure, no I/O but reading
the package's own view files).

Each ``views/<table>.json`` defines table ``fhir.<table>``: same columns, same order. The first
column is the resource key the loader deletes and re-inserts rows by, so a changed resource's
rows (and its child rows) are replaced as a whole.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Final

from hospital.errors import FhirError
from hospital.fhir.fhirpath import date_boundary
from hospital.fhir.viewdef import View, load_view

VIEWS_DIR: Final = Path(__file__).parent / "views"
_DATE_TYPES: Final = frozenset({"date"})
_DATETIME_TYPES: Final = frozenset({"dateTime", "instant"})


@dataclass(frozen=True)
class ViewTable:
    """A shipped view and the table it fills."""

    table: str
    view: View
    columns: tuple[str, ...]
    types: Mapping[str, str | None]

    @property
    def resource_type(self) -> str:
        return self.view.resource

    @property
    def key_column(self) -> str:
        return self.columns[0]


@lru_cache(maxsize=4)
def shipped_views(directory: Path = VIEWS_DIR) -> tuple[ViewTable, ...]:
    """Every ViewDefinition in ``directory``, compiled, sorted by table name."""
    tables = []
    for path in sorted(directory.glob("*.json")):
        view = load_view(path)
        if view.name != path.stem:
            raise FhirError(f"{path}: view name {view.name!r} must equal the file name")
        tables.append(ViewTable(path.stem, view, view.columns, view.column_types))
    if not tables:
        raise FhirError(f"no ViewDefinitions in {directory}")
    return tuple(tables)


def views_by_type(tables: Iterable[ViewTable]) -> dict[str, list[ViewTable]]:
    out: dict[str, list[ViewTable]] = {}
    for t in tables:
        out.setdefault(t.resource_type, []).append(t)
    return out


def db_value(value: Any, type_name: str | None) -> Any:
    """A cell as PostgreSQL accepts it for the column's type.

    Partial FHIR dates (``1970-06``) don't fit ``date``/``timestamptz`` columns; they are
    stored as their low boundary (the raw JSONB keeps the exact value).
    """
    if value is None:
        return None
    if type_name in _DATE_TYPES and isinstance(value, str) and len(value) != 10:
        return date_boundary(value, "date", high=False)
    if type_name in _DATETIME_TYPES and isinstance(value, str) and "T" not in value:
        return date_boundary(value, "date", high=False)
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False)
    return value


def flatten(
    resources: Iterable[Mapping[str, Any]], tables: Iterable[ViewTable]
) -> dict[str, list[tuple[Any, ...]]]:
    """Rows per table for ``resources``, as tuples in column order, ready for COPY."""
    by_type = views_by_type(tables)
    out: dict[str, list[tuple[Any, ...]]] = {}
    for resource in resources:
        for table in by_type.get(str(resource.get("resourceType")), ()):
            rows = out.setdefault(table.table, [])
            types = table.types
            for row in table.view.rows(resource):
                rows.append(tuple(db_value(row[c], types[c]) for c in table.columns))
    return out
