"""Parse supplier FHIR input (Bundles, NDJSON, single resources) and resolve references.

Pure functions: text in, resources and quarantine entries out. References are rewritten to
the stable form ``Type/id`` so that ``getReferenceKey()`` in the shipped views yields the key
of the referenced row:

- ``urn:uuid:…`` (and any other ``fullUrl``) -> the ``Type/id`` of the bundle entry it names;
- conditional references ``Type?identifier=system|value`` -> the entry with that identifier
  when the bundle holds one, otherwise ``Type/<uuid5 of the query>``: the same identifier
  always gives the same key, in every file, so rows join across bundles;
- ``#local`` (contained) and plain ``Type/id`` / absolute URLs are kept as they are.

An entry that can't be used (not an object, no ``resourceType``/``id``, a malformed
conditional reference, nesting too deep, text PostgreSQL can't store) becomes a
:class:`Quarantined` record naming the file, the entry index and the reason; the other
entries still load.

A ``urn:uuid:``/``urn:oid:`` reference that names no usable entry of the bundle (typically: the
referenced Patient entry was itself unusable) does *not* quarantine the resource holding it:
the reference is kept as written and listed in :attr:`ParsedResource.unresolved`; the loader
records it in ``fhir.unresolved_reference`` and rewrites it once a resource with that
``fullUrl`` is loaded (see :mod:`hospital.fhir.load`).

Bundles tagged :data:`COMPLETE_TAG` (what ``hospital fhir export`` writes) are complete per
patient: :attr:`ParseResult.complete_patients` lists their Patients so that the loader retires
stored resources of those patients that the export no longer holds (EHR deletes).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

import orjson

from hospital.fhir.references import (
    TYPE_RE,
    Dangling,
    ReferenceIndex,
    Unresolvable,
    collect_references,
    conditional_key,
)

__all__ = ["ReferenceIndex", "conditional_key"]  # re-exported: part of this module's API

BUNDLE_TYPES: Final = frozenset({"transaction", "batch", "collection", "searchset"})
_ID_RE: Final = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")
_RELATIVE_RE: Final = re.compile(r"^(?P<type>[A-Z][A-Za-z]+)/(?P<id>[A-Za-z0-9\-.]{1,64})")
# Bundle.meta.tag of exports that hold *every* resource of each Patient they contain.
COMPLETE_TAG: Final = {"system": "urn:hospital:fhir-export", "code": "complete-per-patient"}


@dataclass(frozen=True)
class Quarantined:
    """An entry that could not be loaded, and why."""

    source: str
    entry_index: int | None  # None: the whole file was unreadable
    reason: str
    resource_type: str | None = None
    resource_id: str | None = None
    payload: str | None = None
    stage: str = "parse"  # parse | flatten | load


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
    full_url: str | None = None
    # urn references that name no entry of the bundle, kept as written (see module doc).
    unresolved: tuple[str, ...] = ()


@dataclass
class ParseResult:
    resources: list[ParsedResource] = field(default_factory=list)
    quarantined: list[Quarantined] = field(default_factory=list)
    deleted: list[tuple[str, str]] = field(default_factory=list)
    # Patient ids of bundles tagged COMPLETE_TAG -> every (type, id) those bundles hold.
    complete_patients: dict[str, set[tuple[str, str]]] = field(default_factory=dict)

    @property
    def entries(self) -> int:
        """Input entries accounted for: each is a resource, a quarantine record or a delete."""
        return len(self.resources) + len(self.quarantined) + len(self.deleted)

    def extend(self, other: ParseResult) -> None:
        self.resources.extend(other.resources)
        self.quarantined.extend(other.quarantined)
        self.deleted.extend(other.deleted)
        for patient, keys in other.complete_patients.items():
            self.complete_patients.setdefault(patient, set()).update(keys)


def canonical_json(resource: Mapping[str, Any]) -> str:
    """Stable JSON text of a resource: sorted keys, no whitespace, UTF-8 kept."""
    try:
        return orjson.dumps(resource, option=orjson.OPT_SORT_KEYS).decode("utf-8")
    except TypeError:  # integers beyond 64 bits: orjson refuses them, the stdlib doesn't
        return json.dumps(resource, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def loads(text: str | bytes) -> Any:
    """Parse JSON (orjson for speed; the stdlib for what orjson rejects, e.g. huge integers).

    Raises ValueError for invalid JSON, including nesting deeper than orjson's limit (1024)
    or the interpreter's: no RecursionError escapes.
    """
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        if "recursion" in str(exc).lower():
            raise ValueError(f"nesting too deep: {exc}") from exc
        try:
            return json.loads(text)
        except RecursionError as deep:
            raise ValueError("nesting too deep") from deep


def clean_text(value: str) -> str:
    """``value`` as PostgreSQL can store it in a text column: NUL characters and lone
    surrogates (from JSON escapes or undecodable file names) written as escapes."""
    if "\x00" in value:
        value = value.replace("\x00", "\\x00")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        value = value.encode("utf-8", "backslashreplace").decode("utf-8")
    return value


def content_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


# An escaped NUL (``\u0000``) in JSON text, not an escaped backslash followed by "u0000".
_NUL_RE: Final = re.compile(r"(?<!\\)(?:\\\\)*\\u0000")


def check_resource(resource: object) -> str | None:
    """Why ``resource`` can't be loaded, or None when it has a usable type and id."""
    if not isinstance(resource, dict):
        return f"entry is not a JSON object ({type(resource).__name__})"
    rtype = resource.get("resourceType")
    if not isinstance(rtype, str) or not TYPE_RE.match(rtype):
        return "resource has no valid resourceType"
    rid = resource.get("id")
    if not isinstance(rid, str) or not _ID_RE.match(rid):
        return f"{rtype} has no valid id"
    return None


def _finish(
    source: str,
    index: int,
    resource: dict[str, Any],
    refs: ReferenceIndex,
    full_url: object = None,
) -> ParsedResource | Quarantined:
    """The resource ready to load, or why not. Never raises: whatever goes wrong with one
    resource (nesting too deep, lone surrogates, ...) quarantines that resource only."""
    rtype, rid = resource["resourceType"], resource["id"]
    try:
        return _finish_checked(source, index, resource, refs, full_url)
    except RecursionError:
        return Quarantined(source, index, "nesting too deep", rtype, rid)
    except (ValueError, TypeError, UnicodeError, OverflowError) as exc:
        return Quarantined(source, index, f"unusable resource: {exc}", rtype, rid)


def _finish_checked(
    source: str,
    index: int,
    resource: dict[str, Any],
    refs: ReferenceIndex,
    full_url: object,
) -> ParsedResource | Quarantined:
    rtype, rid = resource["resourceType"], resource["id"]
    # References are rewritten in the parsed resource itself (once, in place), then the
    # canonical text is written once: no second serialisation or parse of the resource.
    pending: list[tuple[dict[str, Any], str]] = []
    dangling: list[str] = []

    def resolve(reference: str) -> str:
        try:
            return refs.resolve(reference)
        except Dangling:
            if reference not in dangling:
                dangling.append(reference)
            return reference

    try:
        # Resolve everything first: a resource with one malformed reference is quarantined
        # whole, unchanged.
        collect_references(resource, resolve, pending)
    except Unresolvable as exc:
        text = canonical_json(resource)
        return Quarantined(source, index, str(exc), rtype, rid, text)
    for holder, target in pending:
        holder["reference"] = target
    text = canonical_json(resource)
    if "\\u0000" in text and _NUL_RE.search(text):  # substring test first: fast
        # Valid JSON, but PostgreSQL can store NUL neither in jsonb nor in text.
        return Quarantined(
            source, index, "contains a NUL character (\\u0000) PostgreSQL cannot store", rtype, rid
        )
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
        full_url=full_url if isinstance(full_url, str) and full_url else None,
        unresolved=tuple(dangling),
    )


def rebuild(parsed: ParsedResource, targets: Mapping[str, str]) -> ParsedResource:
    """``parsed`` with its unresolved references that ``targets`` names rewritten
    (``urn:uuid:…`` -> ``Type/id``): the dependent of a parent that arrived later."""
    pending: list[tuple[dict[str, Any], str]] = []

    def resolve(reference: str) -> str:
        return targets.get(reference, reference)

    collect_references(parsed.resource, resolve, pending)
    for holder, target in pending:
        holder["reference"] = target
    text = canonical_json(parsed.resource)
    return ParsedResource(
        source=parsed.source,
        entry_index=parsed.entry_index,
        resource_type=parsed.resource_type,
        id=parsed.id,
        version_id=parsed.version_id,
        resource=parsed.resource,
        canonical_json=text,
        content_hash=content_hash(text),
        full_url=parsed.full_url,
        unresolved=tuple(r for r in parsed.unresolved if r not in targets),
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
    usable: list[tuple[int, dict[str, Any], object]] = []
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
        usable.append((index, resource, entry.get("fullUrl")))

    for index, resource, full_url in usable:
        item = _finish(source, index, resource, refs, full_url)
        if isinstance(item, Quarantined):
            result.quarantined.append(item)
        else:
            result.resources.append(item)
    if _is_complete(bundle):
        keys = {(r.resource_type, r.id) for r in result.resources}
        keys.update(
            (q.resource_type, q.resource_id)
            for q in result.quarantined
            if q.resource_type is not None and q.resource_id is not None
        )
        for r in result.resources:
            if r.resource_type == "Patient":
                result.complete_patients.setdefault(r.id, set()).update(keys)
    return result


def _is_complete(bundle: Mapping[str, Any]) -> bool:
    meta = bundle.get("meta")
    tags = meta.get("tag") if isinstance(meta, dict) else None
    if not isinstance(tags, list):
        return False
    return any(
        isinstance(t, dict)
        and t.get("system") == COMPLETE_TAG["system"]
        and t.get("code") == COMPLETE_TAG["code"]
        for t in tags
    )


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
