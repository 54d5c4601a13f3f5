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
from hospital.fhir.viewdef import (
    INTEGER_TYPES,
    Column,
    View,
    column_result,
    column_value,
    load_view,
)

VIEWS_DIR: Final = Path(__file__).parent / "views"
_DATE_TYPES: Final = frozenset({"date"})
_DATETIME_TYPES: Final = frozenset({"dateTime", "instant"})
_CONTAINERS: Final = (dict, list)

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
Navigate = Callable[[dict[str, Any]], list[Any] | None]


def _generic_cell(view: View, col: Column, type_name: str | None) -> Cell:
    def cell(resource: Mapping[str, Any]) -> Any:
        return db_value(column_value(col, resource, view.variables(resource)), type_name)

    return cell


@dataclass(frozen=True)
class _FlatColumn:
    """How one column of a flat view is computed (see :func:`_compile_rows`)."""

    navigate: Navigate | None  # plain navigation as direct dict look-ups, or None
    generic: Cell  # column_value + db_value: anything else, and data navigate can't model
    column: Column
    type_name: str | None
    simple: bool  # a single value without conversion: the first value (or None) is the cell
    converted: bool  # db_value may change a non-null value (dates, objects)


def _flat_column(view: View, col: Column, type_name: str | None) -> _FlatColumn:
    return _FlatColumn(
        navigate=col.expression.navigator(view.resource),
        generic=_generic_cell(view, col, type_name),
        column=col,
        type_name=type_name,
        simple=not col.collection and (col.type is None or col.type not in INTEGER_TYPES),
        converted=type_name in _DATE_TYPES or type_name in _DATETIME_TYPES,
    )


def _compile_rows(table: ViewTable) -> RowTuples:
    """Rows of one view as COPY-ready tuples. A flat view (one select of columns) gives one row
    per resource, computed column by column without building row dicts; the result is what
    ``view.rows`` + :func:`db_value` give (a unit test compares both on every sample)."""
    view, names, types = table.view, table.columns, table.types
    flat = view.flat_columns()
    if flat is None or tuple(c.name for c in flat) != names:

        def generic(resource: Mapping[str, Any]) -> list[tuple[Any, ...]]:
            return [tuple(db_value(row[c], types[c]) for c in names) for row in view.rows(resource)]

        return generic

    specs = tuple(
        (f.navigate, f.generic, f.column, f.type_name, f.simple, f.converted)
        for f in (_flat_column(view, col, types[col.name]) for col in flat)
    )
    resource_type = view.resource

    def one_row(resource: Mapping[str, Any]) -> list[tuple[Any, ...]]:
        # Hot: once per resource and column of the ingest, hence inlined.
        if resource.get("resourceType") != resource_type:
            return []
        cells: list[Any] = []
        for navigate, generic, column, type_name, simple, converted in specs:
            values = navigate(resource) if navigate is not None else None  # type: ignore[arg-type]
            if values is None:
                cells.append(generic(resource))
                continue
            if simple and len(values) < 2:
                value = values[0] if values else None
            else:
                value = column_result(column, values)
            if value is not None and (converted or isinstance(value, _CONTAINERS)):
                value = db_value(value, type_name)
            cells.append(value)
        return [tuple(cells)]

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
