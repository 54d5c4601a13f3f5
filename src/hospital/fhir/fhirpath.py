"""FHIRPath evaluation for ViewDefinitions, on top of fhirpathpy.

fhirpathpy does the FHIRPath work. This module adds what SQL-on-FHIR needs beyond the
FHIRPath core (``getResourceKey()``, ``getReferenceKey()``, ``lowBoundary()``,
``highBoundary()``, a ``join()`` that yields ``''`` on empty input) through fhirpathpy's
invocation table, and a fast path: expressions that are plain member navigation
(``subject.reference``, ``code.coding.first().code``, ``value.ofType(Quantity).value``) are
compiled to direct dict look-ups, because fhirpathpy's generic tree walk costs ~50 µs per
expression and ingestion evaluates hundreds of thousands of them. Anything else goes to
fhirpathpy; a unit test checks both paths agree on every shipped view and sample resource.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal
from typing import Any, Final

from fhirpathpy.engine import do_eval
from fhirpathpy.engine import util as fp_util
from fhirpathpy.engine.invocations.constants import constants as fp_constants
from fhirpathpy.engine.nodes import FP_DateTime, FP_Time, FP_Type, ResourceNode, TypeInfo
from fhirpathpy.models import models as fp_models
from fhirpathpy.parser import parse as fp_parse

from hospital.errors import FhirError

R4_MODEL: Final[dict[str, Any]] = fp_models["r4"]

# Environment variables every expression may use besides the view's constants.
BUILTIN_VARIABLES: Final = frozenset(
    {"rowIndex", "resource", "rootResource", "context", "ucum", "sct", "loinc"}
)


# --- SQL-on-FHIR functions ------------------------------------------------------------------


def _data(item: Any) -> Any:
    return fp_util.get_data(item)


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
_TIME_RE: Final = re.compile(r"^(?P<h>\d{2})(?::(?P<mi>\d{2})(?::(?P<s>\d{2})(?:\.(?P<f>\d+))?)?)?$")


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


Step = Callable[[list[tuple[Any, str]]], list[tuple[Any, str]]]


def _child_path(path: str, key: str) -> str:
    child = f"{path}.{key}"
    return str(R4_MODEL["pathsDefinedElsewhere"].get(child, child))


def _type_of(path: str) -> str:
    return str(R4_MODEL["path2Type"].get(path, path))


def _member_step(key: str, choice_type: str | None) -> Step:
    field = key + choice_type[0].upper() + choice_type[1:] if choice_type else key
    shadow = "_" + field

    def step(items: list[tuple[Any, str]]) -> list[tuple[Any, str]]:
        out: list[tuple[Any, str]] = []
        for data, path in items:
            if not isinstance(data, dict):
                continue
            if shadow in data:
                raise _Fallback
            value = data.get(field)
            if value is None:
                continue
            child = _child_path(path, key)
            child = _type_of(child + choice_type if choice_type else child)
            if isinstance(value, list):
                out.extend((v, child) for v in value if v is not None)
            else:
                out.append((value, child))
        return out

    return step


def _first_step(items: list[tuple[Any, str]]) -> list[tuple[Any, str]]:
    return items[:1]


def _index_step(index: int) -> Step:
    return lambda items: items[index : index + 1]


def _identifier(node: Mapping[str, Any]) -> str | None:
    """The identifier of a ``TermExpression > InvocationTerm > MemberInvocation`` or
    ``MemberInvocation`` node, else None."""
    if node.get("type") == "TermExpression":
        node = (node.get("children") or [{}])[0]
        if node.get("type") != "InvocationTerm":
            return None
        node = (node.get("children") or [{}])[0]
    if node.get("type") != "MemberInvocation":
        return None
    ident = (node.get("children") or [{}])[0]
    text = ident.get("text")
    return text.strip("`") if ident.get("type") == "Identifier" and isinstance(text, str) else None


def _function(node: Mapping[str, Any]) -> tuple[str, list[dict[str, Any]]] | None:
    if node.get("type") != "FunctionInvocation":
        return None
    fn = node["children"][0]
    name = fn["children"][0].get("text")
    params = fn["children"][1]["children"] if len(fn["children"]) > 1 else []
    return str(name), list(params)


def _is_choice(path: str, key: str) -> bool:
    return _child_path(path, key) in R4_MODEL["choiceTypePaths"]


def _compile_fast(node: Mapping[str, Any], resource_type: str | None) -> list[Step] | None:
    """Steps for a pure navigation expression rooted at a resource of ``resource_type``.

    Returns None when the expression uses anything else; fhirpathpy then evaluates it.
    Choice elements are only fast when followed by ``ofType(T)`` (the type picks the key).
    """
    if resource_type is None:
        return None
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
            break
        else:
            return None
    chain.reverse()
    steps: list[Step] = []
    path = resource_type
    i = 0
    while i < len(chain):
        part = chain[i]
        if part.get("type") == "_Index":
            text = part["node"].get("text")
            if not isinstance(text, str) or not text.isdigit():
                return None
            steps.append(_index_step(int(text)))
            i += 1
            continue
        key = _identifier(part)
        if key is not None:
            if key[:1].isupper():
                return None  # a type name (Patient.name) or an unknown form: let fhirpathpy do it
            choice: str | None = None
            if _is_choice(path, key):
                nxt = _function(chain[i + 1]) if i + 1 < len(chain) else None
                if nxt is None or nxt[0] != "ofType" or len(nxt[1]) != 1:
                    return None
                type_name = nxt[1][0].get("text")
                allowed = R4_MODEL["choiceTypePaths"][_child_path(path, key)]
                cap = type_name[:1].upper() + type_name[1:] if isinstance(type_name, str) else ""
                if cap not in allowed:
                    return None
                choice = cap
                i += 1
            steps.append(_member_step(key, choice))
            path = _type_of(_child_path(path, key) + (choice or ""))
            i += 1
            continue
        fn = _function(part)
        if fn is not None and fn[0] == "first" and not fn[1]:
            steps.append(_first_step)
            i += 1
            continue
        return None
    return steps


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
    compiled steps are cached per focus type.
    """

    __slots__ = ("_fast", "text", "tree", "variables")

    def __init__(self, text: str, tree: dict[str, Any]) -> None:
        self.text = text
        self.tree = tree
        self.variables = frozenset(_constant_names(tree, set()))
        self._fast: dict[str, tuple[Step, ...] | None] = {}

    def __repr__(self) -> str:
        return f"Expression({self.text!r})"

    def fast_steps(self, focus_type: str) -> tuple[Step, ...] | None:
        """The fast-path steps for a focus of ``focus_type``, or None if it needs fhirpathpy."""
        if focus_type not in self._fast:
            steps = _compile_fast(self.tree["children"][0], focus_type or None)
            self._fast[focus_type] = tuple(steps) if steps is not None else None
        return self._fast[focus_type]

    def evaluate(self, focus: Any, variables: Mapping[str, Any]) -> list[Any]:
        """Evaluate on ``focus`` (a resource dict or a node from an earlier evaluation).

        Returns fhirpathpy nodes (ResourceNode) or plain values; see :func:`to_python`.
        """
        if isinstance(focus, ResourceNode):
            items: list[tuple[Any, str]] = [(focus.data, focus.path or "")]
        elif isinstance(focus, Mapping):
            items = [(focus, str(focus.get("resourceType", "")))]
        else:
            items = []
        steps = self.fast_steps(items[0][1]) if items else None
        if steps is not None:
            try:
                for step in steps:
                    items = step(items)
                return [ResourceNode(data, path) for data, path in items]
            except _Fallback:
                pass
        return self.evaluate_slow(focus, variables)

    def evaluate_slow(self, focus: Any, variables: Mapping[str, Any]) -> list[Any]:
        """Evaluate with fhirpathpy only (the reference the fast path is tested against)."""
        fp_constants.reset()
        # fhirpathpy keeps the model in a class attribute set by some functions only (ofType);
        # set it so that type checks never see a model left over from another caller.
        TypeInfo.model = R4_MODEL
        root = [focus]
        ctx: dict[str, Any] = {
            "dataRoot": root,
            "vars": {"context": focus, "ucum": "http://unitsofmeasure.org", **variables},
            "model": R4_MODEL,
            "userInvocationTable": USER_FUNCTIONS,
        }
        try:
            result = do_eval(ctx, root, self.tree["children"][0])
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
        tree = fp_parse(text)
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
        return int(value) if value == value.to_integral_value() and "." not in str(value) else (
            float(value)
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
