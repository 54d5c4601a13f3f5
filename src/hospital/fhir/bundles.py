"""Parse supplier FHIR input (Bundles, NDJSON, single resources) and resolve references.

Pure functions: text in, resources and quarantine entries out. References are rewritten to
the stable form ``Type/id`` so that ``getReferenceKey()`` in the shipped views yields the key
of the referenced row:

- ``urn:uuid:…`` (and any other ``fullUrl``) -> the ``Type/id`` of the bundle entry it names;
- conditional references ``Type?identifier=system|value`` -> the entry with that identifier
  when the bundle holds one, otherwise ``Type/<uuid5 of the query>``: the same identifier
  always gives the same key, in every file, so rows join across bundles;
- ``#local`` (contained) and plain ``Type/id`` / absolute URLs are kept as they are.

An entry that can't be used (not an object, no ``resourceType``/``id``, a reference that
can't be resolved) becomes a :class:`Quarantined` record naming the file, the entry index and
the reason; the other entries still load.
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final
from urllib.parse import parse_qsl

import orjson

BUNDLE_TYPES: Final = frozenset({"transaction", "batch", "collection", "searchset"})
# Namespace for keys of resources known only through a conditional reference.
CONDITIONAL_NAMESPACE: Final = uuid.UUID("6f2b8a3e-2f1c-5d4e-9a7b-3c1d2e4f5a6b")
_ID_RE: Final = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")
_TYPE_RE: Final = re.compile(r"^[A-Z][A-Za-z]+$")
_RELATIVE_RE: Final = re.compile(r"^(?P<type>[A-Z][A-Za-z]+)/(?P<id>[A-Za-z0-9\-.]{1,64})")


@dataclass(frozen=True)
class Quarantined:
    """An entry that could not be loaded, and why."""

    source: str
    entry_index: int | None  # None: the whole file was unreadable
    reason: str
    resource_type: str | None = None
    resource_id: str | None = None
    payload: str | None = None


@dataclass(frozen=True)
class ParsedResource:
    """A resource ready to load: references resolved, canonical JSON and its hash computed."""

    source: str
    entry_index: int
    resource_type: str
    id: str
    version_id: str | None
    resource: dict[str, Any]
    canonical_json: str
    content_hash: str


@dataclass
class ParseResult:
    resources: list[ParsedResource] = field(default_factory=list)
    quarantined: list[Quarantined] = field(default_factory=list)
    deleted: list[tuple[str, str]] = field(default_factory=list)

    def extend(self, other: ParseResult) -> None:
        self.resources.extend(other.resources)
        self.quarantined.extend(other.quarantined)
        self.deleted.extend(other.deleted)


class _Unresolvable(Exception):
    pass


def canonical_json(resource: Mapping[str, Any]) -> str:
    """Stable JSON text of a resource: sorted keys, no whitespace, UTF-8 kept."""
    try:
        return orjson.dumps(resource, option=orjson.OPT_SORT_KEYS).decode("utf-8")
    except TypeError:  # integers beyond 64 bits: orjson refuses them, the stdlib doesn't
        return json.dumps(resource, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def loads(text: str | bytes) -> Any:
    """Parse JSON (orjson for speed; the stdlib for what orjson rejects, e.g. huge integers)."""
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return json.loads(text)


def content_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def conditional_key(resource_type: str, system: str | None, value: str) -> str:
    """The stable id of a resource known only by an identifier."""
    return str(uuid.uuid5(CONDITIONAL_NAMESPACE, f"{resource_type}|{system or ''}|{value}"))


def _split_identifier(token: str) -> tuple[str | None, str]:
    if "|" in token:
        system, value = token.split("|", 1)
        return (system or None), value
    return None, token


@dataclass
class ReferenceIndex:
    """What the references of one bundle may point at."""

    full_urls: dict[str, str] = field(default_factory=dict)  # fullUrl -> Type/id
    identifiers: dict[tuple[str, str | None, str], str] = field(default_factory=dict)
    # Bundles repeat the same few conditional references thousands of times.
    _cache: dict[str, str] = field(default_factory=dict)
    # Escaped reference text (as in canonical JSON) -> its ``"reference":"…"`` replacement.
    _rewrites: dict[str, str] = field(default_factory=dict)

    def add(self, full_url: object, resource: Mapping[str, Any]) -> None:
        rtype, rid = resource["resourceType"], resource["id"]
        target = f"{rtype}/{rid}"
        if isinstance(full_url, str) and full_url:
            self.full_urls[full_url] = target
        for ident in resource.get("identifier") or []:
            if isinstance(ident, Mapping) and isinstance(ident.get("value"), str):
                system = ident.get("system") if isinstance(ident.get("system"), str) else None
                self.identifiers.setdefault((rtype, system, ident["value"]), target)
                self.identifiers.setdefault((rtype, None, ident["value"]), target)

    def resolve(self, reference: str) -> str:
        """The ``Type/id`` (or unchanged) form of ``reference``; raises _Unresolvable."""
        target = self._cache.get(reference)
        if target is None:
            target = self._cache[reference] = self._resolve(reference)
        return target

    def rewrite(self, match: re.Match[str]) -> str:
        """``re.sub`` callback on ``_REFERENCE_TEXT_RE``: the match with its reference resolved
        (the match itself when resolving changes nothing); raises _Unresolvable."""
        raw = match.group(1)
        out = self._rewrites.get(raw)
        if out is None:
            reference = _unescape(raw)
            target = self.resolve(reference)
            if target == reference:
                out = match.group(0)
            else:
                out = '"reference":"' + json.dumps(target, ensure_ascii=False)[1:-1] + '"'
            self._rewrites[raw] = out
        return out

    def _resolve(self, reference: str) -> str:
        if reference.startswith("#"):
            return reference
        if reference.startswith(("urn:uuid:", "urn:oid:")):
            target = self.full_urls.get(reference)
            if target is None:
                raise _Unresolvable(f"reference {reference!r} names no entry of the bundle")
            return target
        if "?" in reference:
            return self._conditional(reference)
        if reference in self.full_urls:
            return self.full_urls[reference]
        return reference

    def _conditional(self, reference: str) -> str:
        rtype, _, query = reference.partition("?")
        params = parse_qsl(query, keep_blank_values=True)
        if not _TYPE_RE.match(rtype) or len(params) != 1 or params[0][0] != "identifier":
            raise _Unresolvable(
                f"conditional reference {reference!r}: only Type?identifier=system|value "
                "is supported"
            )
        system, value = _split_identifier(params[0][1])
        if not value:
            raise _Unresolvable(f"conditional reference {reference!r} has no identifier value")
        target = self.identifiers.get((rtype, system, value))
        if target is None:
            target = f"{rtype}/{conditional_key(rtype, system, value)}"
        return target


# In canonical JSON (no whitespace) every reference is the text ``"reference":"…"``; a quote
# inside a JSON string is always escaped, so this can't match inside another value. Used to
# name, in text order, the first reference of a quarantined resource that can't be resolved.
_REFERENCE_TEXT_RE: Final = re.compile(r'"reference":"([^"\\]*(?:\\.[^"\\]*)*)"')


def _unescape(raw: str) -> str:
    return raw if "\\" not in raw else str(json.loads(f'"{raw}"'))


def check_resource(resource: object) -> str | None:
    """Why ``resource`` can't be loaded, or None when it has a usable type and id."""
    if not isinstance(resource, dict):
        return f"entry is not a JSON object ({type(resource).__name__})"
    rtype = resource.get("resourceType")
    if not isinstance(rtype, str) or not _TYPE_RE.match(rtype):
        return "resource has no valid resourceType"
    rid = resource.get("id")
    if not isinstance(rid, str) or not _ID_RE.match(rid):
        return f"{rtype} has no valid id"
    return None


_CONTAINERS: Final = (dict, list, tuple)
_SCALARS: Final = (int, float, bool, type(None))


def _collect_references(
    node: dict[str, Any] | list[Any] | tuple[Any, ...],
    resolve: Callable[[str], str],
    out: list[tuple[dict[str, Any], str]],
) -> None:
    """Append ``(holder, target)`` for every ``"reference": str`` under ``node`` that resolves
    to something else; raises _Unresolvable. Nothing is changed yet.

    Hot (every node of every resource): exact-type tests first, isinstance only for the rare
    subclass, so that it costs about what a second parse of the resource would.
    """
    if isinstance(node, dict):
        for key, value in node.items():
            kind = type(value)
            if kind is dict or kind is list:
                _collect_references(value, resolve, out)
            elif kind is str or (kind not in _SCALARS and isinstance(value, str)):
                if key == "reference":
                    target = resolve(value)
                    if target != value:
                        out.append((node, target))
            elif kind not in _SCALARS and isinstance(value, _CONTAINERS):
                _collect_references(value, resolve, out)
    else:
        for value in node:
            kind = type(value)
            if (kind is dict or kind is list) or (
                kind is not str and kind not in _SCALARS and isinstance(value, _CONTAINERS)
            ):
                _collect_references(value, resolve, out)


def _finish(
    source: str, index: int, resource: dict[str, Any], refs: ReferenceIndex
) -> ParsedResource | Quarantined:
    rtype, rid = resource["resourceType"], resource["id"]
    # References are rewritten in the parsed resource itself (once, in place), then the
    # canonical text is written once: no second serialisation or parse of the resource.
    pending: list[tuple[dict[str, Any], str]] = []
    try:
        # Resolve everything first: a resource with one bad reference is quarantined whole,
        # unchanged.
        _collect_references(resource, refs.resolve, pending)
    except _Unresolvable as exc:
        text = canonical_json(resource)
        reason = str(exc)
        try:  # the reason names the first bad reference in text order
            _REFERENCE_TEXT_RE.sub(refs.rewrite, text)
        except _Unresolvable as first:
            reason = str(first)
        return Quarantined(source, index, reason, rtype, rid, text)
    for holder, target in pending:
        holder["reference"] = target
    text = canonical_json(resource)
    meta = resource.get("meta")
    version = meta.get("versionId") if isinstance(meta, dict) else None
    return ParsedResource(
        source=source,
        entry_index=index,
        resource_type=rtype,
        id=rid,
        version_id=version if isinstance(version, str) else None,
        resource=resource,
        canonical_json=text,
        content_hash=content_hash(text),
    )


def _payload(value: object) -> str:
    try:
        return canonical_json(value) if isinstance(value, dict) else json.dumps(value)
    except (TypeError, ValueError):
        return repr(value)


def parse_bundle(bundle: Mapping[str, Any], source: str) -> ParseResult:
    """Resources of a Bundle (transaction, batch, collection or searchset).

    Takes ownership of ``bundle``: its resources are rewritten in place.
    """
    result = ParseResult()
    btype = bundle.get("type")
    if btype not in BUNDLE_TYPES:
        result.quarantined.append(Quarantined(source, None, f"unsupported Bundle type {btype!r}"))
        return result
    entries = bundle.get("entry") or []
    if not isinstance(entries, list):
        result.quarantined.append(Quarantined(source, None, "Bundle.entry is not a list"))
        return result

    refs = ReferenceIndex()
    usable: list[tuple[int, dict[str, Any]]] = []
    for index, entry in enumerate(entries):
        if not isinstance(entry, dict):
            result.quarantined.append(
                Quarantined(source, index, "entry is not a JSON object", payload=_payload(entry))
            )
            continue
        request = entry.get("request")
        method = request.get("method") if isinstance(request, dict) else None
        if method == "DELETE":
            match = _RELATIVE_RE.match(str(request.get("url", ""))) if request else None
            if match is None:
                result.quarantined.append(
                    Quarantined(
                        source, index, "DELETE without a Type/id url", payload=_payload(entry)
                    )
                )
            else:
                result.deleted.append((match["type"], match["id"]))
            continue
        resource = entry.get("resource")
        problem = check_resource(resource)
        if problem is not None:
            rtype = resource.get("resourceType") if isinstance(resource, dict) else None
            result.quarantined.append(
                Quarantined(
                    source,
                    index,
                    problem,
                    rtype if isinstance(rtype, str) else None,
                    None,
                    _payload(resource if resource is not None else entry),
                )
            )
            continue
        assert isinstance(resource, dict)
        refs.add(entry.get("fullUrl"), resource)
        usable.append((index, resource))

    for index, resource in usable:
        item = _finish(source, index, resource, refs)
        if isinstance(item, Quarantined):
            result.quarantined.append(item)
        else:
            result.resources.append(item)
    return result


def parse_document(doc: object, source: str, index: int = 0) -> ParseResult:
    """A parsed JSON value: a Bundle, or a single resource (entry index ``index``).

    Takes ownership of ``doc``: references are rewritten in place.
    """
    if isinstance(doc, dict) and doc.get("resourceType") == "Bundle":
        return parse_bundle(doc, source)
    result = ParseResult()
    problem = check_resource(doc)
    if problem is not None:
        result.quarantined.append(Quarantined(source, index, problem, payload=_payload(doc)))
        return result
    assert isinstance(doc, dict)
    item = _finish(source, index, doc, ReferenceIndex())
    if isinstance(item, Quarantined):
        result.quarantined.append(item)
    else:
        result.resources.append(item)
    return result


def parse_json_text(text: str, source: str) -> ParseResult:
    """A ``.json`` file's text: one Bundle or one resource."""
    try:
        doc = loads(text)
    except ValueError as exc:
        result = ParseResult()
        result.quarantined.append(
            Quarantined(source, None, f"invalid JSON: {exc}", payload=text[:10_000])
        )
        return result
    return parse_document(doc, source)


def parse_ndjson_text(text: str, source: str) -> ParseResult:
    """An NDJSON file's text: one resource (or Bundle) per line; entry index = line index.

    Each line is resolved on its own, so ``urn:uuid`` references can't cross lines.
    """
    result = ParseResult()
    for index, line in enumerate(text.splitlines()):
        if not line.strip():
            continue
        try:
            doc = loads(line)
        except ValueError as exc:
            result.quarantined.append(
                Quarantined(source, index, f"invalid JSON: {exc}", payload=line[:10_000])
            )
            continue
        if isinstance(doc, dict) and doc.get("resourceType") == "Bundle":
            result.extend(parse_bundle(doc, source))
        else:
            result.extend(parse_document(doc, source, index))
    return result


def parse_text(text: str, source: str) -> ParseResult:
    """Dispatch on the file name: ``.ndjson`` is NDJSON, anything else one JSON document."""
    if source.endswith((".ndjson", ".jsonl")):
        return parse_ndjson_text(text, source)
    return parse_json_text(text, source)
