"""SQL-on-FHIR v2 ViewDefinitions: validate once, then turn resources into rows.

:func:`compile_view` checks a ViewDefinition (JSON) and parses every FHIRPath in it, so that
a bad definition fails with one :class:`FhirError` before any data is read. The compiled
:class:`View` evaluates resources to rows (dicts keyed by column name, in column order).

Row semantics follow the specification: a select's rows are the cartesian product of its
columns, its nested selects and the concatenation of its ``unionAll`` branches, repeated for
each ``forEach``/``forEachOrNull``/``repeat`` focus; ``%rowIndex`` is the 0-based index of
the focus in the nearest such iteration.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from itertools import product
from pathlib import Path
from typing import Any, Final

from fhirpathpy.engine.nodes import FP_DateTime, FP_Time, ResourceNode

from hospital.errors import FhirError
from hospital.fhir.fhirpath import (
    BUILTIN_VARIABLES,
    Expression,
    compile_expression,
)

Row = dict[str, Any]

_date_value: Callable[[str], Any] = FP_DateTime
_time_value: Callable[[str], Any] = FP_Time

_NAME_RE: Final = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
_SELECT_KEYS: Final = frozenset(
    {"column", "select", "unionAll", "forEach", "forEachOrNull", "repeat"}
)
# Date-like constants become fhirpathpy date/time values so that comparisons use FHIRPath
# date semantics rather than string equality.
_DATE_CONSTANTS: Final = {"valueDate", "valueDateTime", "valueInstant"}
INTEGER_TYPES: Final = frozenset({"integer", "positiveInt", "unsignedInt", "integer64"})


@dataclass(frozen=True)
class Column:
    name: str
    expression: Expression
    type: str | None
    collection: bool


@dataclass(frozen=True)
class Select:
    """One ``select`` element (the view itself is the root select)."""

    columns: tuple[Column, ...] = ()
    selects: tuple[Select, ...] = ()
    union_all: tuple[Select, ...] = ()
    for_each: Expression | None = None
    or_null: bool = False
    repeat: tuple[Expression, ...] = ()
    column_names: tuple[str, ...] = field(default=())


@dataclass(frozen=True)
class View:
    """A validated, compiled ViewDefinition."""

    name: str
    resource: str
    root: Select
    where: tuple[Expression, ...]
    constants: Mapping[str, Any]
    definition: Mapping[str, Any]

    @property
    def columns(self) -> tuple[str, ...]:
        return self.root.column_names

    @property
    def column_types(self) -> dict[str, str | None]:
        types: dict[str, str | None] = {}
        _collect_types(self.root, types)
        return types

    def variables(self, resource: Mapping[str, Any]) -> dict[str, Any]:
        """The FHIRPath environment for evaluating this view on ``resource``."""
        return {**self.constants, "resource": resource, "rootResource": resource, "rowIndex": 0}

    def flat_columns(self) -> tuple[Column, ...] | None:
        """The columns, in order, when the view is one plain select of columns (no ``where``,
        no iteration, no nesting): then each resource gives exactly one row, whose cells are
        ``column_value(col, resource, self.variables(resource))``. None otherwise."""
        if self.where or self.root.columns or self.root.union_all or len(self.root.selects) != 1:
            return None
        only = self.root.selects[0]
        if only.selects or only.union_all or only.for_each is not None or only.repeat:
            return None
        if self.root.for_each is not None or self.root.repeat:
            return None
        return only.columns

    def rows(self, resource: Mapping[str, Any]) -> list[Row]:
        """The rows of one resource (none when it is another type or fails ``where``)."""
        if resource.get("resourceType") != self.resource:
            return []
        variables = self.variables(resource)
        for cond in self.where:
            if not _truthy(cond, cond.values(resource, variables)):
                return []
        raw = _select_rows(self.root, resource, variables, 0)
        names = self.root.column_names
        return [{name: row.get(name) for name in names} for row in raw]

    def run(self, resources: Iterable[Mapping[str, Any]]) -> list[Row]:
        """All rows of ``resources``, in input order."""
        out: list[Row] = []
        for resource in resources:
            out.extend(self.rows(resource))
        return out


def _collect_types(select: Select, out: dict[str, str | None]) -> None:
    for col in select.columns:
        out[col.name] = "collection" if col.collection else col.type
    for child in (*select.selects, *select.union_all[:1]):
        _collect_types(child, out)


def _truthy(cond: Expression, values: list[Any]) -> bool:
    if not values:
        return False
    if len(values) == 1 and isinstance(values[0], bool):
        return values[0]
    raise FhirError(f"where path {cond.text!r} must be boolean, got {values!r}")


# --- evaluation -------------------------------------------------------------------------------


def column_value(col: Column, focus: Any, variables: Mapping[str, Any]) -> Any:
    """The cell of column ``col`` for ``focus``."""
    return column_result(col, col.expression.values(focus, variables))


def column_result(col: Column, values: list[Any]) -> Any:
    """The cell of column ``col`` given the values its expression yielded."""
    if col.type in INTEGER_TYPES:
        values = [_convert(v, col.type) for v in values]
    if col.collection:
        return values
    if len(values) > 1:
        raise FhirError(
            f"column {col.name!r} ({col.expression.text!r}) returned {len(values)} values; "
            "set collection: true to keep them all"
        )
    return values[0] if values else None


def _convert(value: Any, type_name: str | None) -> Any:
    if type_name in INTEGER_TYPES and isinstance(value, float | Decimal) and value == int(value):
        return int(value)
    if type_name == "decimal" and isinstance(value, int) and not isinstance(value, bool):
        return value
    return value


def _repeat_foci(
    exprs: Sequence[Expression], focus: Any, variables: Mapping[str, Any]
) -> list[Any]:
    """Depth-first: each node reached by any path, then what the paths reach from it."""
    out: list[Any] = []

    def walk(node: Any) -> None:
        for expr in exprs:
            for child in expr.evaluate(node, variables):
                out.append(child)
                walk(child)

    walk(focus)
    return out


def _select_rows(select: Select, focus: Any, variables: dict[str, Any], index: int) -> list[Row]:
    iterated = select.for_each is not None or bool(select.repeat)
    if select.for_each is not None:
        foci = select.for_each.evaluate(focus, variables)
    elif select.repeat:
        foci = _repeat_foci(select.repeat, focus, variables)
    else:
        foci = [focus]
    if not foci:
        if not select.or_null:
            return []
        # One row of nulls; own columns are still evaluated (on nothing) so that %rowIndex
        # and literals keep their values, as the conformance suite expects.
        null_row: Row = dict.fromkeys(select.column_names)
        scoped = {**variables, "rowIndex": 0}
        for col in select.columns:
            null_row[col.name] = column_value(col, None, scoped)
        return [null_row]

    rows: list[Row] = []
    for position, item in enumerate(foci):
        row_index = position if iterated else index
        scoped = (
            {**variables, "rowIndex": row_index}
            if row_index != variables["rowIndex"]
            else (variables)
        )
        parts: list[list[Row]] = []
        if select.columns:
            parts.append([{col.name: column_value(col, item, scoped) for col in select.columns}])
        for child in select.selects:
            parts.append(_select_rows(child, item, scoped, row_index))
        if select.union_all:
            branch_rows: list[Row] = []
            for branch in select.union_all:
                branch_rows.extend(_select_rows(branch, item, scoped, row_index))
            parts.append(branch_rows)
        for combo in product(*parts):
            merged: Row = {}
            for part in combo:
                merged.update(part)
            rows.append(merged)
    return rows


# --- validation / compilation -----------------------------------------------------------------


def _constant_value(spec: Mapping[str, Any], index: int) -> tuple[str, Any]:
    name = spec.get("name")
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise FhirError(f"constant[{index}] needs a valid name, got {name!r}")
    value_keys = [k for k in spec if k.startswith("value")]
    if len(value_keys) != 1:
        raise FhirError(f"constant {name!r} needs exactly one value[x], got {value_keys}")
    key = value_keys[0]
    value = spec[key]
    if key in _DATE_CONSTANTS and isinstance(value, str):
        return name, _date_value(value)
    if key == "valueTime" and isinstance(value, str):
        return name, _time_value(value)
    if key == "valueDecimal" and isinstance(value, int | float):
        return name, Decimal(str(value))
    return name, value


class _Compiler:
    def __init__(self, resource: str, constants: Mapping[str, Any]) -> None:
        self.resource = resource
        self.variables = BUILTIN_VARIABLES | set(constants)
        self.seen: set[str] = set()

    def expression(self, text: object, where: str) -> Expression:
        expr = compile_expression(text)
        unknown = expr.variables - self.variables
        if unknown:
            raise FhirError(f"{where}: undefined constant(s) {sorted('%' + u for u in unknown)}")
        return expr

    def select(self, spec: object, where: str) -> Select:
        if not isinstance(spec, Mapping):
            raise FhirError(f"{where} must be an object, got {spec!r}")
        for_each_key = [k for k in ("forEach", "forEachOrNull", "repeat") if k in spec]
        if len(for_each_key) > 1:
            raise FhirError(f"{where} may use only one of forEach, forEachOrNull, repeat")
        for_each: Expression | None = None
        repeat: tuple[Expression, ...] = ()
        or_null = "forEachOrNull" in spec
        if "forEach" in spec or or_null:
            key = "forEachOrNull" if or_null else "forEach"
            for_each = self.expression(spec[key], f"{where}.{key}")
        elif "repeat" in spec:
            paths = spec["repeat"]
            if not isinstance(paths, list) or not paths:
                raise FhirError(f"{where}.repeat must be a non-empty list of paths")
            repeat = tuple(self.expression(p, f"{where}.repeat") for p in paths)

        columns = tuple(
            self.column(c, f"{where}.column[{i}]")
            for i, c in enumerate(self._list(spec, "column", where))
        )
        selects = tuple(
            self.select(s, f"{where}.select[{i}]")
            for i, s in enumerate(self._list(spec, "select", where))
        )
        union_all = self.union(self._list(spec, "unionAll", where), where)
        names: list[str] = [c.name for c in columns]
        for child in selects:
            names.extend(child.column_names)
        if union_all:
            names.extend(union_all[0].column_names)
        return Select(
            columns=columns,
            selects=selects,
            union_all=union_all,
            for_each=for_each,
            or_null=or_null,
            repeat=repeat,
            column_names=tuple(names),
        )

    def union(self, specs: list[Any], where: str) -> tuple[Select, ...]:
        branches: list[Select] = []
        for i, spec in enumerate(specs):
            # Each branch may reuse the column names of the others, and only those.
            saved = set(self.seen)
            branch = self.select(spec, f"{where}.unionAll[{i}]")
            if branches and branch.column_names != branches[0].column_names:
                raise FhirError(
                    f"{where}.unionAll[{i}] has columns {list(branch.column_names)}, "
                    f"expected {list(branches[0].column_names)} (same names, same order)"
                )
            branches.append(branch)
            if i < len(specs) - 1:
                self.seen = saved
        return tuple(branches)

    def column(self, spec: object, where: str) -> Column:
        if not isinstance(spec, Mapping):
            raise FhirError(f"{where} must be an object, got {spec!r}")
        name = spec.get("name")
        if not isinstance(name, str) or not _NAME_RE.match(name):
            raise FhirError(f"{where}.name must match {_NAME_RE.pattern}, got {name!r}")
        if name in self.seen:
            raise FhirError(f"{where}: duplicate column name {name!r}")
        self.seen.add(name)
        collection = spec.get("collection", False)
        if not isinstance(collection, bool):
            raise FhirError(f"{where}.collection must be a boolean")
        type_name = spec.get("type")
        if type_name is not None and not isinstance(type_name, str):
            raise FhirError(f"{where}.type must be a string")
        expr = self.expression(spec.get("path"), f"{where}.path")
        return Column(name=name, expression=expr, type=type_name, collection=collection)

    @staticmethod
    def _list(spec: Mapping[str, Any], key: str, where: str) -> list[Any]:
        value = spec.get(key, [])
        if not isinstance(value, list):
            raise FhirError(f"{where}.{key} must be a list")
        return value


def compile_view(definition: object) -> View:
    """Validate and compile a ViewDefinition; raises FhirError naming the first problem."""
    if not isinstance(definition, Mapping):
        raise FhirError("a ViewDefinition must be a JSON object")
    resource = definition.get("resource")
    if not isinstance(resource, str) or not _NAME_RE.match(resource):
        raise FhirError(f"ViewDefinition.resource must name a FHIR resource type, got {resource!r}")
    selects = definition.get("select")
    if not isinstance(selects, list) or not selects:
        raise FhirError("ViewDefinition.select must be a non-empty list")
    raw_constants = definition.get("constant", [])
    if not isinstance(raw_constants, list):
        raise FhirError("ViewDefinition.constant must be a list")
    constants: dict[str, Any] = {}
    for i, spec in enumerate(raw_constants):
        if not isinstance(spec, Mapping):
            raise FhirError(f"constant[{i}] must be an object")
        name, value = _constant_value(spec, i)
        constants[name] = value

    compiler = _Compiler(resource, constants)
    root = compiler.select({"select": selects}, "select")
    if not root.column_names:
        raise FhirError("ViewDefinition defines no columns")
    raw_where = definition.get("where", [])
    if not isinstance(raw_where, list):
        raise FhirError("ViewDefinition.where must be a list")
    where: list[Expression] = []
    for i, spec in enumerate(raw_where):
        if not isinstance(spec, Mapping):
            raise FhirError(f"where[{i}] must be an object")
        where.append(compiler.expression(spec.get("path"), f"where[{i}].path"))
    view_name = definition.get("name")
    return View(
        name=view_name if isinstance(view_name, str) else resource.lower(),
        resource=resource,
        root=root,
        where=tuple(where),
        constants=constants,
        definition=definition,
    )


def evaluate(definition: object, resources: Iterable[Mapping[str, Any]]) -> list[Row]:
    """Compile ``definition`` and run it over ``resources`` (convenience for one-off use)."""
    return compile_view(definition).run(resources)


def load_view(path: Path) -> View:
    """Read and compile a ViewDefinition JSON file."""
    try:
        definition = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise FhirError(f"cannot read ViewDefinition {path}: {exc}") from exc
    return compile_view(definition)


def iter_rows(view: View, resources: Iterable[Mapping[str, Any]]) -> Iterator[Row]:
    for resource in resources:
        yield from view.rows(resource)


__all__ = [
    "INTEGER_TYPES",
    "Column",
    "ResourceNode",
    "Row",
    "Select",
    "View",
    "column_result",
    "column_value",
    "compile_view",
    "evaluate",
    "iter_rows",
    "load_view",
]
