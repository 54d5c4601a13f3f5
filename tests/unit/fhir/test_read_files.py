"""Reading files never raises; view fingerprints; the watcher's file handling (no database)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from hospital.fhir.bundles import parse_text
from hospital.fhir.flatten import VIEWS_DIR, shipped_views
from hospital.fhir.load import IngestReport, read_file
from hospital.fhir.watch import _move, _unreadable, ready_files
from hospital.fhir.write import view_hashes


def _reason(path: Path, **kwargs: int) -> str:
    result = read_file(path, **kwargs)
    assert result.resources == []
    ((q,),) = [result.quarantined]
    assert q.entry_index is None
    return q.reason


def test_unusable_files_become_one_quarantine_record(tmp_path: Path) -> None:
    patient = {"resourceType": "Patient", "id": "p"}
    (tmp_path / "utf16.json").write_text(json.dumps(patient), encoding="utf-16")
    assert "wrong encoding" in _reason(tmp_path / "utf16.json")
    (tmp_path / "deep.json").write_text("[" * 100_000 + "]" * 100_000)
    assert "nesting too deep" in _reason(tmp_path / "deep.json")
    (tmp_path / "big.json").write_text(json.dumps(patient))
    assert "too large" in _reason(tmp_path / "big.json", max_bytes=10)
    assert "unreadable" in _reason(tmp_path / "absent.json")
    (tmp_path / "cut.json").write_bytes('{"a": "Patiño"}'.encode()[:13])
    assert _reason(tmp_path / "cut.json")  # cut inside a UTF-8 sequence: a reason, no error


def test_a_utf8_byte_order_mark_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "bom.json"
    path.write_bytes(b"\xef\xbb\xbf" + json.dumps({"resourceType": "Patient", "id": "p"}).encode())
    assert [r.id for r in read_file(path).resources] == ["p"]


def test_deep_nesting_inside_one_resource_costs_that_resource_only() -> None:
    deep = '{"resourceType":"Patient","id":"d","x":' + "[" * 1000 + "]" * 1000 + "}"
    good = json.dumps({"resourceType": "Patient", "id": "g"})
    result = parse_text(deep + "\n" + good + "\n", "x.ndjson")
    assert [r.id for r in result.resources] == ["g"]
    assert [(q.entry_index, "nesting" in q.reason) for q in result.quarantined] == [(0, True)]


def test_nul_is_refused_but_an_escaped_backslash_u0000_is_not() -> None:
    nul = json.dumps({"resourceType": "Patient", "id": "a", "gender": "x\u0000"})
    text = json.dumps({"resourceType": "Patient", "id": "b", "gender": "x\\u0000"})
    result = parse_text(nul + "\n" + text + "\n", "x.ndjson")
    assert [r.id for r in result.resources] == ["b"]
    assert "NUL" in result.quarantined[0].reason


def test_view_fingerprint_changes_only_for_the_type_whose_view_changed(tmp_path: Path) -> None:
    before = view_hashes(shipped_views())
    copy = tmp_path / "views"
    shutil.copytree(VIEWS_DIR, copy)
    view = json.loads((copy / "condition.json").read_text())
    view["select"][0]["column"][0]["description"] = "changed"
    (copy / "condition.json").write_text(json.dumps(view))
    after = view_hashes(shipped_views(copy))
    assert after["Condition"] != before["Condition"]
    assert {k: v for k, v in after.items() if k != "Condition"} == {
        k: v for k, v in before.items() if k != "Condition"
    }


def test_report_accounts_for_every_entry() -> None:
    a = IngestReport(entries=5, resources=2, quarantined=1, delete_requests=1, superseded=1)
    b = IngestReport(entries=3, resources=3)
    a.add(b)
    assert a.entries == a.accounted == 8


def test_watch_file_handling(tmp_path: Path) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    for name in ("b.json", "a.ndjson", ".half.json", "notes.txt", "c.jsonl"):
        (inbox / name).write_text("{}")
    assert [p.name for p in ready_files(inbox)] == ["a.ndjson", "b.json", "c.jsonl"]
    done = tmp_path / "processed"
    assert _move(inbox / "a.ndjson", done).name == "a.ndjson"
    (inbox / "a.ndjson").write_text("{}")
    assert _move(inbox / "a.ndjson", done).name == "a.1.ndjson"
    assert _unreadable(parse_text("{oops", "f.json")) is not None
    assert _unreadable(parse_text('{"resourceType": "Patient"}', "f.json")) is None
