"""References across files and time: unresolved references, and complete exports.

**Unresolved references.** A ``urn:uuid:`` reference that names no usable entry of its bundle
(the referenced Patient entry was broken, or lives in another file) no longer quarantines the
resource holding it: dependents of one bad Patient are hundreds of good Encounters,
Observations and Claims. The resource is loaded with the reference as written (its flattened
key column, e.g. ``patient_id``, is NULL) and the reference is recorded in
``fhir.unresolved_reference``. Whenever a resource with that ``fullUrl`` is loaded (the same
batch, a later file, or already stored), the dependent is rewritten (``Patient/<id>``),
re-hashed and re-flattened, and the record removed.

**Complete exports.** A bundle tagged :data:`hospital.fhir.bundles.COMPLETE_TAG` holds every
resource of each Patient in it. Stored resources of those patients (any view table keyed by
``id`` with a ``patient_id`` column) that the bundle no longer holds were deleted at the
source and are retired here: that is how EHR deletes reach the FHIR tables.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import psycopg

from hospital.fhir.bundles import ParsedResource, loads, rebuild
from hospital.fhir.flatten import ViewTable
from hospital.fhir.write import Key, Writer, delete_resources

_MATCHES = """
SELECT u.resource_type, u.resource_id, u.reference, r.resource_type || '/' || r.id
FROM fhir.unresolved_reference u
JOIN fhir.resource r ON r.full_url = u.reference
WHERE u.reference = ANY(%s)
"""


def record_and_resolve(
    cur: psycopg.Cursor[Any], writer: Writer, written: Sequence[ParsedResource]
) -> tuple[int, int]:
    """Record the unresolved references of ``written`` and rewrite every stored dependent
    whose target is now known. Returns (dependents rewritten, references still unresolved
    among ``written``)."""
    cur.execute("SELECT EXISTS (SELECT 1 FROM fhir.unresolved_reference)")
    if cur.fetchone() == (True,) and written:
        # A re-written resource's references are resolved afresh: forget the old record.
        cur.execute(
            "DELETE FROM fhir.unresolved_reference u "
            "USING unnest(%s::text[], %s::text[]) AS k(resource_type, id) "
            "WHERE u.resource_type = k.resource_type AND u.resource_id = k.id",
            ([r.resource_type for r in written], [r.id for r in written]),
        )
    new = [(r.resource_type, r.id, ref) for r in written for ref in r.unresolved]
    if new:
        cur.executemany(
            "INSERT INTO fhir.unresolved_reference (resource_type, resource_id, reference) "
            "VALUES (%s, %s, %s) ON CONFLICT DO NOTHING",
            new,
        )
    candidates = {ref for _, _, ref in new}
    candidates.update(r.full_url for r in written if r.full_url)
    if not candidates or not _any_unresolved(cur):
        return 0, len(new)
    cur.execute(_MATCHES, (sorted(candidates),))
    targets: dict[Key, dict[str, str]] = {}
    for rtype, rid, reference, target in cur.fetchall():
        targets.setdefault((rtype, rid), {})[reference] = target
    if not targets:
        return 0, len(new)
    dependents = [rebuild(p, targets[(p.resource_type, p.id)]) for p in _stored(cur, targets)]
    writer.stored.update(targets)  # stored copies: replaced, not inserted beside
    rewritten = writer.write(dependents)
    done = [
        (r.resource_type, r.id, ref) for r in rewritten for ref in targets[(r.resource_type, r.id)]
    ]
    cur.execute(
        "DELETE FROM fhir.unresolved_reference u "
        "USING unnest(%s::text[], %s::text[], %s::text[]) AS k(resource_type, id, reference) "
        "WHERE u.resource_type = k.resource_type AND u.resource_id = k.id "
        "AND u.reference = k.reference",
        ([d[0] for d in done], [d[1] for d in done], [d[2] for d in done]),
    )
    resolved = set(done)
    return len(rewritten), sum(1 for item in new if item not in resolved)


def _any_unresolved(cur: psycopg.Cursor[Any]) -> bool:
    cur.execute("SELECT EXISTS (SELECT 1 FROM fhir.unresolved_reference)")
    return cur.fetchone() == (True,)


def _stored(cur: psycopg.Cursor[Any], keys: Mapping[Key, object]) -> list[ParsedResource]:
    """Stored resources as ParsedResource (their unresolved references included)."""
    types = [k[0] for k in keys]
    ids = [k[1] for k in keys]
    cur.execute(
        "SELECT r.resource_type, r.id, r.version_id, r.resource::text, r.source_file, "
        "r.entry_index, r.full_url, r.content_hash, "
        "ARRAY(SELECT u.reference FROM fhir.unresolved_reference u "
        "      WHERE u.resource_type = r.resource_type AND u.resource_id = r.id "
        "      ORDER BY u.reference) "
        "FROM fhir.resource r JOIN unnest(%s::text[], %s::text[]) AS k(resource_type, id) "
        "USING (resource_type, id)",
        (types, ids),
    )
    return [
        ParsedResource(
            source=source or "",
            entry_index=index if index is not None else 0,
            resource_type=rtype,
            id=rid,
            version_id=version,
            resource=loads(text),
            canonical_json=text,
            content_hash=content_hash,
            full_url=full_url,
            unresolved=tuple(refs),
        )
        for rtype, rid, version, text, source, index, full_url, content_hash, refs in (
            cur.fetchall()
        )
    ]


def retire_missing(
    cur: psycopg.Cursor[Any],
    views: Sequence[ViewTable],
    complete: Mapping[str, set[Key]],
) -> int:
    """Delete stored resources of the patients in ``complete`` that the complete export no
    longer holds; returns how many."""
    patients = sorted(complete)
    keep: set[Key] = set().union(*complete.values())
    doomed: list[Key] = []
    for t in views:
        if t.resource_type == "Patient" or t.key_column != "id" or "patient_id" not in t.columns:
            continue
        cur.execute(
            f"SELECT id FROM fhir.{t.table} WHERE patient_id = ANY(%s)",
            (patients,),
        )
        doomed.extend(
            (t.resource_type, rid)
            for (rid,) in cur.fetchall()
            if (t.resource_type, rid) not in keep
        )
    return delete_resources(cur, views, doomed) if doomed else 0
