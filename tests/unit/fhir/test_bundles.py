"""Bundle / NDJSON parsing and reference resolution (pure)."""

from __future__ import annotations

import json
from typing import Any

from hospital.fhir.bundles import (
    conditional_key,
    parse_bundle,
    parse_ndjson_text,
    parse_text,
    rebuild,
)


def _entry(resource: dict[str, Any], full_url: str | None = None) -> dict[str, Any]:
    entry: dict[str, Any] = {"resource": resource, "request": {"method": "POST"}}
    if full_url:
        entry["fullUrl"] = full_url
    return entry


def _bundle(*entries: dict[str, Any], kind: str = "transaction") -> dict[str, Any]:
    return {"resourceType": "Bundle", "type": kind, "entry": list(entries)}


def test_urn_uuid_and_conditional_references_resolve() -> None:
    bundle = _bundle(
        _entry({"resourceType": "Patient", "id": "p1"}, "urn:uuid:aaa"),
        _entry(
            {
                "resourceType": "Practitioner",
                "id": "dr1",
                "identifier": [{"system": "http://npi", "value": "42"}],
            },
            "urn:uuid:bbb",
        ),
        _entry(
            {
                "resourceType": "Encounter",
                "id": "e1",
                "subject": {"reference": "urn:uuid:aaa"},
                "participant": [
                    {"individual": {"reference": "Practitioner?identifier=http://npi|42"}}
                ],
                "serviceProvider": {"reference": "Organization?identifier=https://x|7"},
                "contained": [{"resourceType": "Location", "id": "l"}],
                "location": [{"location": {"reference": "#l"}}],
            },
            "urn:uuid:ccc",
        ),
    )
    result = parse_bundle(bundle, "f.json")
    assert result.quarantined == []
    enc = {r.id: r for r in result.resources}["e1"].resource
    assert enc["subject"]["reference"] == "Patient/p1"
    assert enc["participant"][0]["individual"]["reference"] == "Practitioner/dr1"
    org_key = conditional_key("Organization", "https://x", "7")
    assert enc["serviceProvider"]["reference"] == f"Organization/{org_key}"
    assert enc["location"][0]["location"]["reference"] == "#l"
    # Same identifier -> same key, whichever file it comes from.
    assert conditional_key("Organization", "https://x", "7") == org_key


def test_bad_entries_are_quarantined_and_the_rest_loads() -> None:
    bundle = _bundle(
        _entry({"resourceType": "Patient", "id": "ok"}, "urn:uuid:1"),
        _entry({"resourceType": "Patient"}, "urn:uuid:2"),
        _entry({"id": "x"}),
        _entry(
            {"resourceType": "Observation", "id": "o", "subject": {"reference": "urn:uuid:404"}}
        ),
        "not an object",  # type: ignore[arg-type]
        _entry(
            {
                "resourceType": "Observation",
                "id": "o2",
                "subject": {"reference": "Patient?name=smith"},
            }
        ),
    )
    result = parse_bundle(bundle, "f.json")
    # "o" names a urn that no entry has: kept, with the reference flagged.
    assert [r.id for r in result.resources] == ["ok", "o"]
    assert result.resources[1].unresolved == ("urn:uuid:404",)
    reasons = {q.entry_index: q.reason for q in result.quarantined}
    assert set(reasons) == {1, 2, 4, 5}
    assert "no valid id" in reasons[1]
    assert "resourceType" in reasons[2]
    assert "Patient?name=smith" in reasons[5]
    assert all(q.source == "f.json" for q in result.quarantined)
    assert result.entries == 6


def test_dependents_of_an_unusable_patient_are_kept_with_the_reference_flagged() -> None:
    bundle = _bundle(
        _entry({"resourceType": "Patient"}, "urn:uuid:p"),
        _entry({"resourceType": "Condition", "id": "c", "subject": {"reference": "urn:uuid:p"}}),
        _entry({"resourceType": "Encounter", "id": "e", "subject": {"reference": "urn:uuid:p"}}),
    )
    result = parse_bundle(bundle, "f.json")
    assert [q.entry_index for q in result.quarantined] == [0]
    assert [(r.id, r.unresolved) for r in result.resources] == [
        ("c", ("urn:uuid:p",)),
        ("e", ("urn:uuid:p",)),
    ]
    # When the parent arrives, the dependent is rewritten and re-hashed.
    fixed = rebuild(result.resources[0], {"urn:uuid:p": "Patient/p1"})
    assert fixed.resource["subject"] == {"reference": "Patient/p1"}
    assert fixed.unresolved == ()
    assert fixed.content_hash != result.resources[0].content_hash


def test_invalid_json_is_quarantined_with_no_entry_index() -> None:
    result = parse_text("{not json", "broken.json")
    assert result.resources == []
    assert result.quarantined[0].entry_index is None
    assert "invalid JSON" in result.quarantined[0].reason


def test_ndjson_lines_and_bad_lines() -> None:
    lines = [
        json.dumps({"resourceType": "Patient", "id": "a"}),
        "{oops",
        "",
        json.dumps({"resourceType": "Patient"}),
        json.dumps(
            {"resourceType": "Observation", "id": "o", "subject": {"reference": "Patient/a"}}
        ),
    ]
    result = parse_ndjson_text("\n".join(lines), "x.ndjson")
    assert [r.id for r in result.resources] == ["a", "o"]
    assert [q.entry_index for q in result.quarantined] == [1, 3]


def test_all_bundle_types_and_deletes() -> None:
    for kind in ("transaction", "batch", "collection", "searchset"):
        result = parse_bundle(
            _bundle(_entry({"resourceType": "Patient", "id": "a"}), kind=kind), "f"
        )
        assert [r.id for r in result.resources] == ["a"]
    result = parse_bundle(_bundle({"request": {"method": "DELETE", "url": "Patient/gone"}}), "f")
    assert result.deleted == [("Patient", "gone")]
    assert parse_bundle(_bundle(kind="document"), "f").quarantined


def test_content_hash_ignores_key_order_but_not_content() -> None:
    a = parse_text(json.dumps({"resourceType": "Patient", "id": "a", "gender": "male"}), "f")
    b = parse_text(json.dumps({"gender": "male", "id": "a", "resourceType": "Patient"}), "f")
    c = parse_text(json.dumps({"resourceType": "Patient", "id": "a", "gender": "female"}), "f")
    assert a.resources[0].content_hash == b.resources[0].content_hash
    assert a.resources[0].content_hash != c.resources[0].content_hash


def test_samples_parse_without_quarantine(sample_files: list) -> None:  # type: ignore[type-arg]
    for path in sample_files:
        result = parse_text(path.read_text("utf-8"), str(path))
        assert result.quarantined == []
        for r in result.resources:
            assert '"reference":"urn:uuid:' not in r.canonical_json
            assert '"reference":"Practitioner?' not in r.canonical_json


def test_references_are_rewritten_everywhere_in_the_resource() -> None:
    bundle = _bundle(
        _entry({"resourceType": "Patient", "id": "p1"}, "urn:uuid:aaa"),
        _entry(
            {
                "resourceType": "Observation",
                "id": "o1",
                "subject": {"reference": "urn:uuid:aaa", "display": "urn:uuid:aaa"},
                "extension": [{"url": "x", "valueReference": {"reference": "urn:uuid:aaa"}}],
                "focus": [{"reference": "urn:uuid:aaa"}, {"reference": "#c"}],
                # "reference" holding an object: what is inside is still resolved
                "note": [{"reference": {"reference": "urn:uuid:aaa"}}],
            }
        ),
    )
    result = parse_bundle(bundle, "f.json")
    assert result.quarantined == []
    obs = {r.id: r for r in result.resources}["o1"]
    assert obs.resource["subject"] == {"reference": "Patient/p1", "display": "urn:uuid:aaa"}
    assert obs.resource["extension"][0]["valueReference"]["reference"] == "Patient/p1"
    assert [f["reference"] for f in obs.resource["focus"]] == ["Patient/p1", "#c"]
    assert obs.resource["note"][0]["reference"]["reference"] == "Patient/p1"
    # The stored text is the canonical form of the rewritten resource, and its hash matches.
    assert obs.canonical_json == json.dumps(
        obs.resource, sort_keys=True, separators=(",", ":"), ensure_ascii=False
    )
    assert '"reference":"urn:uuid:' not in obs.canonical_json


def test_a_quarantined_resource_is_kept_unchanged_and_names_its_bad_reference() -> None:
    resource = {
        "resourceType": "Observation",
        "id": "o",
        "subject": {"reference": "urn:uuid:p"},
        "performer": [{"reference": "urn:uuid:404"}],
        "basedOn": [{"reference": "ServiceRequest?status=active"}],
    }
    bundle = _bundle(_entry({"resourceType": "Patient", "id": "p"}, "urn:uuid:p"), _entry(resource))
    result = parse_bundle(bundle, "f.json")
    assert [r.id for r in result.resources] == ["p"]
    (q,) = result.quarantined
    assert "ServiceRequest?status=active" in q.reason
    assert q.payload is not None and '"reference":"urn:uuid:p"' in q.payload
    assert resource["subject"] == {"reference": "urn:uuid:p"}
