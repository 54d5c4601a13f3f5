"""The shipped ViewDefinitions and turning resources into table rows (pure, no I/O but reading
the package's own view files).

Each ``views/<table>.json`` defines table ``fhir.<table>``: same columns, same order. The first
column is the resource key the loader deletes and re-inserts rows by, so a changed resource's
rows (and its child rows) are replaced as a whole.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from functools import cached_property, lru_cache
from pathlib import Path
from typing import Any, Final

from hospital.errors import FhirError
from hospital.fhir.fhirpath import date_boundary
from hospital.fhir.viewdef import Column, View, column_result, column_value, load_view

VIEWS_DIR: Final = Path(__file__).parent / "views"
_DATE_TYPES: Final = frozenset({"date"})
_DATETIME_TYPES: Final = frozenset({"dateTime", "instant"})
# Column types whose values column_result converts (integers from decimals).
_PLAIN_EXCLUDED: Final = frozenset({"integer", "positiveInt", "unsignedInt", "integer64"})

RowTuples = Callable[[Mapping[str, Any]], list[tuple[Any, ...]]]


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

    @cached_property
    def row_tuples(self) -> RowTuples:
        """The view compiled once into a function: resource -> its rows as COPY-ready tuples
        (what :func:`flatten` yields for it)."""
        return _compile_rows(self)


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


Cell = Callable[[Mapping[str, Any]], Any]


def _generic_cell(view: View, col: Column, type_name: str | None) -> Cell:
    def cell(resource: Mapping[str, Any]) -> Any:
        return db_value(column_value(col, resource, view.variables(resource)), type_name)

    return cell


def _compile_cell(view: View, col: Column, type_name: str | None) -> Cell:
    """One column of a flat view: plain navigation runs as direct dict look-ups, the rest
    (and data the fast path does not model) through :func:`column_value`."""
    navigate = col.expression.navigator(view.resource)
    generic = _generic_cell(view, col, type_name)
    if navigate is None:
        return generic
    plain = col.type is None or col.type not in _PLAIN_EXCLUDED
    single = not col.collection

    def cell(resource: Mapping[str, Any]) -> Any:
        values = navigate(resource)  # type: ignore[arg-type]
        if values is None:
            return generic(resource)
        if plain and single and len(values) < 2:
            value = values[0] if values else None
        else:
            value = column_result(col, values)
        return db_value(value, type_name)

    return cell


def _compile_rows(table: ViewTable) -> RowTuples:
    view, names, types = table.view, table.columns, table.types
    flat = view.flat_columns()
    if flat is None or tuple(c.name for c in flat) != names:

        def generic(resource: Mapping[str, Any]) -> list[tuple[Any, ...]]:
            return [tuple(db_value(row[c], types[c]) for c in names) for row in view.rows(resource)]

        return generic

    cells = tuple(_compile_cell(view, col, types[col.name]) for col in flat)
    resource_type = view.resource

    def one_row(resource: Mapping[str, Any]) -> list[tuple[Any, ...]]:
        if resource.get("resourceType") != resource_type:
            return []
        return [tuple([cell(resource) for cell in cells])]

    return one_row


def flatten(
    resources: Iterable[Mapping[str, Any]], tables: Iterable[ViewTable]
) -> dict[str, list[tuple[Any, ...]]]:
    """Rows per table for ``resources``, as tuples in column order, ready for COPY."""
    by_type = views_by_type(tables)
    out: dict[str, list[tuple[Any, ...]]] = {}
    for resource in resources:
        for table in by_type.get(str(resource.get("resourceType")), ()):
            rows = out.setdefault(table.table, [])
            rows.extend(table.row_tuples(resource))
    return out
