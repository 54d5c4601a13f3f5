"""FHIRPath evaluation for ViewDefinitions, on top of fhirpathpy.

fhirpathpy does the FHIRPath work. This module adds what SQL-on-FHIR needs beyond the
FHIRPath core (``getResourceKey()``, ``getReferenceKey()``, ``lowBoundary()``,
``highBoundary()``, a ``join()`` that yields ``''`` on empty input) through fhirpathpy's
invocation table, and a fast path: expressions that are plain member navigation
(``subject.reference``, ``code.coding.first().code``, ``value.ofType(Quantity).value``) are
compiled to direct dict look-ups, because fhirpathpy's generic tree walk costs ~50 µs per
expression and ingestion evaluates hundreds of thousands of them; :meth:`Expression.navigator`
fuses such a plan into one function that follows single values without a list per step.
Anything else goes to fhirpathpy; unit tests check the paths agree on every shipped view and
sample resource.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Final

from fhirpathpy.engine import do_eval as _fp_do_eval
from fhirpathpy.engine import util as fp_util
from fhirpathpy.engine.invocations.constants import constants as fp_constants
from fhirpathpy.engine.nodes import FP_DateTime, FP_Time, FP_Type, ResourceNode, TypeInfo
from fhirpathpy.models import models as fp_models
from fhirpathpy.parser import parse as _fp_parse

from hospital.errors import FhirError

R4_MODEL: Final[dict[str, Any]] = fp_models["r4"]

# fhirpathpy ships py.typed but its functions are unannotated: typed handles for strict mypy.
_get_data: Callable[[Any], Any] = fp_util.get_data
_do_eval: Callable[[dict[str, Any], list[Any], dict[str, Any]], Any] = _fp_do_eval
_parse: Callable[[str], dict[str, Any]] = _fp_parse
_new_node: Callable[[Any, str], ResourceNode] = ResourceNode
_reset_constants: Callable[[], None] = fp_constants.reset

# Environment variables every expression may use besides the view's constants.
BUILTIN_VARIABLES: Final = frozenset(
    {"rowIndex", "resource", "rootResource", "context", "ucum", "sct", "loinc"}
)


# --- SQL-on-FHIR functions ------------------------------------------------------------------


def _data(item: Any) -> Any:
    return _get_data(item)


def resource_key(resource: Mapping[str, Any]) -> str | None:
    """The key of a resource: its logical id (ids are unique per type in our tables)."""
    rid = resource.get("id")
    return rid if isinstance(rid, str) else None


_REFERENCE_RE: Final = re.compile(
    r"^(?:.*/)?(?P<type>[A-Z][A-Za-z]+)/(?P<id>[A-Za-z0-9\-.]{1,64})(?:/_history/[^/]+)?$"
)


def reference_key(reference: str, type_name: str | None = None) -> str | None:
    """The key a reference points at (``Patient/p1`` -> ``p1``), or None if it can't tell.

    With ``type_name``, a reference to another type yields None, as the spec requires.
    """
    match = _REFERENCE_RE.match(reference)
    if match is None:
        return None
    if type_name is not None and match["type"] != type_name:
        return None
    return match["id"]


def _fn_get_resource_key(ctx: dict[str, Any], data: list[Any]) -> list[str]:
    keys = []
    for item in data:
        value = _data(item)
        if isinstance(value, Mapping) and (key := resource_key(value)) is not None:
            keys.append(key)
    return keys


def _fn_get_reference_key(
    ctx: dict[str, Any], data: list[Any], type_info: TypeInfo | None = None
) -> list[str]:
    wanted = type_info.name if type_info is not None else None
    keys = []
    for item in data:
        value = _data(item)
        ref = value.get("reference") if isinstance(value, Mapping) else None
        if isinstance(ref, str) and (key := reference_key(ref, wanted)) is not None:
            keys.append(key)
    return keys


def _fn_join(ctx: dict[str, Any], data: list[Any], separator: Any = "") -> str:
    # fhirpathpy yields an empty collection on empty input; the SQL-on-FHIR suite wants ''.
    sep = separator if isinstance(separator, str) else ""
    parts = []
    for item in data:
        value = _data(item)
        if not isinstance(value, str):
            raise FhirError(f"join() needs strings, got {type(value).__name__}")
        parts.append(value)
    return sep.join(parts)


_DATE_RE: Final = re.compile(
    r"^(?P<y>\d{4})(?:-(?P<mo>\d{2})(?:-(?P<d>\d{2})"
    r"(?:T(?P<h>\d{2})(?::(?P<mi>\d{2})(?::(?P<s>\d{2})(?:\.(?P<f>\d+))?)?)?"
    r"(?P<tz>Z|[+-]\d{2}:\d{2})?)?)?)?$"
)
_TIME_RE: Final = re.compile(
    r"^(?P<h>\d{2})(?::(?P<mi>\d{2})(?::(?P<s>\d{2})(?:\.(?P<f>\d+))?)?)?$"
)


def _time_boundary(groups: Mapping[str, str | None], high: bool) -> str:
    hour = groups["h"] or ("23" if high else "00")
    minute = groups["mi"] or ("59" if high else "00")
    second = groups["s"] or ("59" if high else "00")
    frac = groups["f"]
    millis = (frac + "000")[:3] if frac else ("999" if high else "000")
    return f"{hour}:{minute}:{second}.{millis}"


def date_boundary(text: str, kind: str, high: bool) -> str | None:
    """Low/high boundary of a partial date, dateTime or time (FHIRPath boundary functions).

    ``kind`` is ``date``, ``dateTime`` or ``time``. An unknown time zone widens the range to
    the earliest (+14:00) / latest (-12:00) offsets, as the FHIRPath spec does.
    """
    if kind == "time":
        tm = _TIME_RE.match(text)
        return _time_boundary(tm.groupdict(), high) if tm else None
    m = _DATE_RE.match(text)
    if m is None:
        return None
    year = int(m["y"])
    month = int(m["mo"]) if m["mo"] else (12 if high else 1)
    day = int(m["d"]) if m["d"] else (calendar.monthrange(year, month)[1] if high else 1)
    date_part = f"{year:04d}-{month:02d}-{day:02d}"
    if kind == "date":
        return date_part
    tz = m["tz"] or ("-12:00" if high else "+14:00")
    return f"{date_part}T{_time_boundary(m.groupdict(), high)}{tz}"


def decimal_boundary(value: Decimal, high: bool) -> Decimal:
    """Boundary of a decimal given its precision: 1.0 spans [0.95, 1.05]."""
    exponent = value.as_tuple().exponent
    places = -exponent if isinstance(exponent, int) and exponent < 0 else 0
    half = Decimal(5).scaleb(-(places + 1))
    return value + half if high else value - half


def _boundary_kind(item: Any) -> str | None:
    path = item.path if isinstance(item, ResourceNode) else None
    if path in ("date", "dateTime", "instant", "time"):
        return "dateTime" if path == "instant" else path
    value = _data(item)
    if isinstance(value, FP_Time):
        return "time"
    if isinstance(value, FP_DateTime):
        return "dateTime" if "T" in str(value) else "date"
    return None


def _boundary(data: list[Any], high: bool) -> list[Any]:
    out: list[Any] = []
    for item in data:
        kind = _boundary_kind(item)
        value = _data(item)
        if kind is not None:
            result = date_boundary(str(value), kind, high)
            if result is not None:
                out.append(result)
        elif isinstance(value, bool):
            continue
        elif isinstance(value, int | Decimal):
            out.append(decimal_boundary(Decimal(value), high))
    return out


def _fn_low_boundary(ctx: dict[str, Any], data: list[Any], precision: Any = None) -> list[Any]:
    return _boundary(data, high=False)


def _fn_high_boundary(ctx: dict[str, Any], data: list[Any], precision: Any = None) -> list[Any]:
    return _boundary(data, high=True)


# Passed to fhirpathpy unwrapped (we build its context ourselves), so the functions receive
# fhirpathpy's typed nodes: the boundary functions need the node's FHIR type.
USER_FUNCTIONS: Final[dict[str, dict[str, Any]]] = {
    "getResourceKey": {"fn": _fn_get_resource_key},
    "getReferenceKey": {"fn": _fn_get_reference_key, "arity": {0: [], 1: ["TypeSpecifier"]}},
    "lowBoundary": {"fn": _fn_low_boundary, "arity": {0: [], 1: ["Integer"]}},
    "highBoundary": {"fn": _fn_high_boundary, "arity": {0: [], 1: ["Integer"]}},
    "join": {"fn": _fn_join, "arity": {0: [], 1: ["String"]}},
}


# --- fast path --------------------------------------------------------------------------------


class _Fallback(Exception):
    """The fast path met data it does not model (primitive extensions); use fhirpathpy."""


# Steps work on plain JSON values; the FHIR type of the result is known statically.
Step = Callable[[list[Any]], list[Any]]
_UNSET: Final[Any] = object()
_ANY: Final = "System.Any"  # the type after a function whose result is no FHIR element


@dataclass(frozen=True)
class FastPlan:
    steps: tuple[Step, ...]
    result_type: str
    # The same steps as (op, argument) when they are only member look-ups and first(),
    # optionally ending in getReferenceKey()/getResourceKey(): see :func:`_fused`.
    ops: tuple[tuple[int, str | None], ...] | None = None


_MEMBER: Final = 0
_FIRST: Final = 1
_REFERENCE_KEY: Final = 2
_RESOURCE_KEY: Final = 3


def _child_path(path: str, key: str) -> str:
    child = f"{path}.{key}"
    return str(R4_MODEL["pathsDefinedElsewhere"].get(child, child))


def _type_of(path: str) -> str:
    return str(R4_MODEL["path2Type"].get(path, path))


def _member_step(field: str) -> Step:
    shadow = "_" + field

    def step(items: list[Any]) -> list[Any]:
        if len(items) == 1:  # the common case (a resource, a single element): no loop
            data = items[0]
            if type(data) is not dict:
                return []
            if shadow in data:
                raise _Fallback
            value = data.get(field)
            if value is None:
                return []
            return list(value) if type(value) is list else [value]
        out: list[Any] = []
        for data in items:
            if type(data) is not dict:
                continue
            if shadow in data:
                raise _Fallback
            value = data.get(field)
            if value is None:
                continue
            if type(value) is list:
                out.extend(value)
            else:
                out.append(value)
        return out

    return step


def _first_step(items: list[Any]) -> list[Any]:
    return items[:1]


def _index_step(index: int) -> Step:
    return lambda items: items[index : index + 1]


def _unwrap_term(node: Mapping[str, Any]) -> Mapping[str, Any]:
    if node.get("type") == "TermExpression":
        inner = (node.get("children") or [{}])[0]
        if inner.get("type") == "InvocationTerm":
            return dict((inner.get("children") or [{}])[0])
    return node


def _identifier(node: Mapping[str, Any]) -> str | None:
    """The member name of a (possibly term-wrapped) ``MemberInvocation`` node, else None."""
    node = _unwrap_term(node)
    if node.get("type") != "MemberInvocation":
        return None
    ident = (node.get("children") or [{}])[0]
    text = ident.get("text")
    return text.strip("`") if ident.get("type") == "Identifier" and isinstance(text, str) else None


def _function(node: Mapping[str, Any]) -> tuple[str, list[dict[str, Any]]] | None:
    node = _unwrap_term(node)
    if node.get("type") != "FunctionInvocation":
        return None
    fn = node["children"][0]
    name = fn["children"][0].get("text")
    params = fn["children"][1]["children"] if len(fn["children"]) > 1 else []
    return str(name), list(params)


def _flatten_chain(node: Mapping[str, Any]) -> list[Mapping[str, Any]] | None:
    chain: list[Mapping[str, Any]] = []
    current = node
    while True:
        kind = current.get("type")
        if kind == "InvocationExpression":
            left, right = current["children"]
            chain.append(right)
            current = left
        elif kind == "IndexerExpression":
            left, idx = current["children"]
            chain.append({"type": "_Index", "node": idx})
            current = left
        elif kind == "TermExpression":
            chain.append(current)
            chain.reverse()
            return chain
        else:
            return None


def _compile_fast(node: Mapping[str, Any], focus_type: str | None) -> FastPlan | None:
    """A plan for a pure navigation expression on a focus of FHIR type ``focus_type``.

    Returns None when the expression uses anything else; fhirpathpy then evaluates it.
    Choice elements are only fast when followed by ``ofType(T)`` (the type picks the key).
    """
    chain = _flatten_chain(node) if focus_type else None
    if chain is None or focus_type is None:
        return None
    steps: list[Step] = []
    ops: list[tuple[int, str | None]] | None = []
    path = focus_type
    i = 0
    while i < len(chain):
        part = chain[i]
        i += 1
        if part.get("type") == "_Index":
            text = part["node"].get("text")
            if not isinstance(text, str) or not text.isdigit():
                return None
            steps.append(_index_step(int(text)))
            ops = None
            continue
        key = _identifier(part)
        if key is not None:
            if key[:1].isupper() or path == _ANY:
                return None  # a type name (Patient.name) or navigation off a computed value
            child = _child_path(path, key)
            field = key
            if child in R4_MODEL["choiceTypePaths"]:
                nxt = _function(chain[i]) if i < len(chain) else None
                if nxt is None or nxt[0] != "ofType" or len(nxt[1]) != 1:
                    return None
                type_name = nxt[1][0].get("text")
                if not isinstance(type_name, str) or not type_name:
                    return None
                cap = type_name[0].upper() + type_name[1:]
                if cap not in R4_MODEL["choiceTypePaths"][child]:
                    return None
                field, child = key + cap, child + cap
                i += 1
            steps.append(_member_step(field))
            if ops is not None:
                ops.append((_MEMBER, field))
            path = _type_of(child)
            continue
        fn = _function(part)
        step = _function_step(*fn) if fn is not None else None
        if fn is None or step is None:
            return None
        steps.append(step)
        if ops is not None:
            ops = _function_op(ops, *fn)
        if fn[0] != "first":
            path = _ANY
    return FastPlan(tuple(steps), path, tuple(ops) if ops is not None else None)


def _function_op(
    ops: list[tuple[int, str | None]], name: str, params: list[dict[str, Any]]
) -> list[tuple[int, str | None]] | None:
    if ops and ops[-1][0] in (_REFERENCE_KEY, _RESOURCE_KEY):
        return None  # the key functions are fused only as the last step
    if name == "first" and not params:
        return [*ops, (_FIRST, None)]
    if name == "getResourceKey" and not params:
        return [*ops, (_RESOURCE_KEY, None)]
    if name == "getReferenceKey" and len(params) <= 1:
        wanted = params[0].get("text") if params else None
        return [*ops, (_REFERENCE_KEY, wanted if isinstance(wanted, str) else None)]
    return None


def _fused(
    ops: tuple[tuple[int, str | None], ...], general: Callable[[dict[str, Any]], list[Any] | None]
) -> Callable[[dict[str, Any]], list[Any] | None]:
    """The steps of a plan run on one value at a time, without a list per step.

    Navigation stays on a single value while each member is absent, a single value or a list
    whose first item is all that is wanted (one element, or ``first()`` next); otherwise the
    general step-by-step evaluation ``general`` takes over from the start, so the results
    are the same. Returns None when fhirpathpy must evaluate (primitive extensions).
    """
    shadows = tuple("_" + str(arg) for _, arg in ops)
    count = len(ops)

    def run(data: dict[str, Any]) -> list[Any] | None:
        value: Any = data
        for i in range(count):
            op, arg = ops[i]
            if op == _MEMBER:
                if type(value) is not dict:
                    return []
                if shadows[i] in value:
                    return None
                value = value.get(arg)
                if value is None:
                    return []
                if type(value) is list:
                    if not value:
                        return []
                    if len(value) == 1 or (i + 1 < count and ops[i + 1][0] == _FIRST):
                        value = value[0]
                    else:
                        return general(data)
            elif op == _REFERENCE_KEY:
                ref = value.get("reference") if type(value) is dict else None
                if isinstance(ref, str) and (key := reference_key(ref, arg)) is not None:
                    return [key]
                return []
            elif op == _RESOURCE_KEY:
                if type(value) is dict and (key := resource_key(value)) is not None:
                    return [key]
                return []
            # _FIRST: a single value is its own first()
        return [value]

    return run


def _string_literal(param: Mapping[str, Any]) -> str | None:
    text = param.get("text")
    if not isinstance(text, str) or len(text) < 2 or text[0] != "'" or text[-1] != "'":
        return None
    inner = text[1:-1]
    return None if "\\" in inner or "'" in inner else inner


def _function_step(name: str, params: list[dict[str, Any]]) -> Step | None:
    if name == "first" and not params:
        return _first_step
    if name == "getResourceKey" and not params:
        return _resource_key_step
    if name == "getReferenceKey" and len(params) <= 1:
        wanted = params[0].get("text") if params else None
        if wanted is not None and not (isinstance(wanted, str) and wanted.isidentifier()):
            return None
        return _reference_key_step(wanted)
    if name == "join" and len(params) <= 1:
        sep = _string_literal(params[0]) if params else ""
        return None if sep is None else _join_step(sep)
    if name == "count" and not params:
        return lambda items: [len(items)]
    return None


def _resource_key_step(items: list[Any]) -> list[Any]:
    return [k for d in items if type(d) is dict and (k := resource_key(d)) is not None]


def _reference_key_step(type_name: str | None) -> Step:
    def step(items: list[Any]) -> list[Any]:
        out: list[Any] = []
        for data in items:
            ref = data.get("reference") if type(data) is dict else None
            if isinstance(ref, str) and (key := reference_key(ref, type_name)) is not None:
                out.append(key)
        return out

    return step


def _join_step(sep: str) -> Step:
    def step(items: list[Any]) -> list[Any]:
        if not all(isinstance(data, str) for data in items):
            raise _Fallback  # let fhirpathpy report the error
        return [sep.join(items)]

    return step


# --- compiled expressions ---------------------------------------------------------------------


def _constant_names(node: Mapping[str, Any], out: set[str]) -> set[str]:
    if node.get("type") == "ExternalConstant":
        ident = (node.get("children") or [{}])[0]
        text = ident.get("text") or ""
        out.add(str(text).strip("`'\""))
    for child in node.get("children") or []:
        _constant_names(child, out)
    return out


class Expression:
    """A parsed FHIRPath expression, evaluated fast when it is plain navigation.

    The fast path depends on the FHIR type of the focus (to resolve choice elements), so its
    plan is compiled lazily and cached per focus type.
    """

    __slots__ = ("_only_variable", "_plans", "text", "tree", "variables")

    def __init__(self, text: str, tree: dict[str, Any]) -> None:
        self.text = text
        self.tree = tree
        self.variables = frozenset(_constant_names(tree, set()))
        self._plans: dict[str, FastPlan | None] = {}
        term = tree["children"][0]
        # ``%rowIndex`` alone is the commonest non-navigation column; answer it directly.
        is_variable = (
            term.get("type") == "TermExpression"
            and (term.get("children") or [{}])[0].get("type") == "ExternalConstantTerm"
        )
        self._only_variable = next(iter(self.variables)) if is_variable else None

    def __repr__(self) -> str:
        return f"Expression({self.text!r})"

    def plan(self, focus_type: str) -> FastPlan | None:
        """The fast-path plan for a focus of ``focus_type``, or None if it needs fhirpathpy."""
        if focus_type not in self._plans:
            self._plans[focus_type] = _compile_fast(self.tree["children"][0], focus_type or None)
        return self._plans[focus_type]

    def navigator(self, focus_type: str) -> Callable[[dict[str, Any]], list[Any] | None] | None:
        """For dict foci of FHIR type ``focus_type`` (resources of that type): a function
        giving what :meth:`values` gives, or None when the data needs fhirpathpy (then call
        :meth:`values`). None when the expression is not plain navigation at all."""
        if self._only_variable is not None or self.variables:
            return None
        plan = self.plan(focus_type)
        if plan is None:
            return None
        steps = plan.steps

        def run(data: dict[str, Any]) -> list[Any] | None:
            items: list[Any] = [data]
            try:
                for step in steps:
                    items = step(items)
            except _Fallback:
                return None
            return items

        return run if plan.ops is None else _fused(plan.ops, run)

    def _fast(self, focus: Any) -> tuple[list[Any], str] | None:
        # Called once per cell during ingestion: kept flat on purpose.
        kind = type(focus)
        if kind is dict:
            data, focus_type = focus, focus.get("resourceType") or ""
        elif kind is ResourceNode:
            data, focus_type = focus.data, focus.path or ""
        else:
            return None
        plan = self._plans.get(focus_type, _UNSET)
        if plan is _UNSET:
            plan = self.plan(focus_type)
        if plan is None:
            return None
        items = [data]
        try:
            for step in plan.steps:
                items = step(items)
        except _Fallback:
            return None
        return items, plan.result_type

    def values(self, focus: Any, variables: Mapping[str, Any]) -> list[Any]:
        """The result as plain JSON-like values (what a column stores)."""
        if self._only_variable is not None:
            value = variables.get(self._only_variable)
            if isinstance(value, int | str):
                return [value]
        fast = self._fast(focus)
        if fast is not None:
            return fast[0]
        return plain_values(self.evaluate_slow(focus, variables))

    def evaluate(self, focus: Any, variables: Mapping[str, Any]) -> list[Any]:
        """The result as fhirpathpy nodes, to be used as the focus of further expressions."""
        fast = self._fast(focus)
        if fast is not None:
            items, result_type = fast
            return [_new_node(item, result_type) for item in items]
        return self.evaluate_slow(focus, variables)

    def evaluate_slow(self, focus: Any, variables: Mapping[str, Any]) -> list[Any]:
        """Evaluate with fhirpathpy only (the reference the fast path is tested against)."""
        _reset_constants()
        # fhirpathpy keeps the model in a class attribute set by some functions only (ofType);
        # set it so that type checks never see a model left over from another caller.
        setattr(TypeInfo, "model", R4_MODEL)  # noqa: B010 (the attribute is typed as None)
        root = [] if focus is None else [focus]
        ctx: dict[str, Any] = {
            "dataRoot": root,
            "$this": root,
            "vars": {"context": focus, "ucum": "http://unitsofmeasure.org", **variables},
            "model": R4_MODEL,
            "userInvocationTable": USER_FUNCTIONS,
        }
        try:
            result = _do_eval(ctx, root, self.tree["children"][0])
        except FhirError:
            raise
        except Exception as exc:  # fhirpathpy raises bare Exceptions for evaluation errors
            raise FhirError(f"FHIRPath {self.text!r} failed: {exc}") from exc
        return list(result) if isinstance(result, list) else [result]


def compile_expression(text: object) -> Expression:
    """Parse a FHIRPath expression; raises FhirError when it is not valid FHIRPath."""
    if not isinstance(text, str) or not text.strip():
        raise FhirError(f"a FHIRPath expression must be a non-empty string, got {text!r}")
    try:
        tree = _parse(text)
    except Exception as exc:  # the ANTLR lexer/parser raises its own exception types
        raise FhirError(f"invalid FHIRPath {text!r}: {exc}") from exc
    children = tree.get("children") if isinstance(tree, dict) else None
    if not children:
        raise FhirError(f"invalid FHIRPath {text!r}")
    return Expression(text, tree)


def to_python(item: Any) -> Any:
    """A FHIRPath result item as a plain JSON-like Python value."""
    value = _data(item)
    if isinstance(value, Decimal):
        return (
            int(value)
            if value == value.to_integral_value() and "." not in str(value)
            else (float(value))
        )
    if isinstance(value, FP_Type):
        return str(value)
    return value


def is_extension_shadow(value: Any) -> bool:
    """fhirpathpy also yields ``_field`` objects holding only extensions; they are no values."""
    return isinstance(value, Mapping) and list(value.keys()) == ["extension"]


def plain_values(items: Sequence[Any]) -> list[Any]:
    values = (to_python(i) for i in items)
    return [v for v in values if not is_extension_shadow(v)]
