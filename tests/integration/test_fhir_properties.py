"""Property-based: mutated Synthea bundles never lose an entry and never crash the CLI.

Hypothesis mutates real sample bundles (bad ids, impossible dates, values that fit no column,
NUL and lone surrogates, deep nesting, flattening errors, malformed and dangling references,
duplicates, deletes, truncated files) and checks against the real database that

- every input entry is accounted for: loaded, quarantined, a delete, or superseded by a later
  copy of itself (count conservation), and the database holds exactly those rows;
- ``hospital fhir ingest`` exits 0 whenever the file has a good entry, and never prints a
  traceback.

Example counts are kept modest so the module stays well under a minute.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any
from unittest import mock

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from hospital.fhir import cli as fhir_cli
from hospital.fhir.flatten import shipped_views
from hospital.fhir.load import ingest_paths
from hospital.fhir.shared import samples_dir
from hospital.settings import Settings
from tests.unit.fhir.guard import require_shared

pytestmark = pytest.mark.integration

DEEP = "__DEEP__"
Entry = dict[str, Any]


def _resource(entry: Entry) -> dict[str, Any]:
    resource = entry.get("resource")
    return resource if isinstance(resource, dict) else {}


def _set(key: str, value: object) -> Callable[[Entry], None]:
    def apply(entry: Entry) -> None:
        resource = entry.get("resource")
        if isinstance(resource, dict):
            resource[key] = value

    return apply


def _drop(key: str) -> Callable[[Entry], None]:
    def apply(entry: Entry) -> None:
        _resource(entry).pop(key, None)

    return apply


def _given_ints(entry: Entry) -> None:
    for name in _resource(entry).get("name") or []:
        name["given"] = [1, 2]


def _not_object(entry: Entry) -> None:
    entry["resource"] = 42


MUTATIONS: dict[str, Callable[[Entry], None]] = {
    "drop_id": _drop("id"),
    "drop_type": _drop("resourceType"),
    "bad_id": _set("id", "has spaces!"),
    "not_object": _not_object,
    "birth_date": _set("birthDate", "1990-02-30"),
    "period": _set("period", {"start": "2020-13-45T00:00:00Z"}),
    "effective": _set("effectiveDateTime", "yesterday"),
    "quantity": _set("valueQuantity", {"value": "twelve"}),
    "nul": _set("gender", "fe\u0000male"),
    "surrogate": _set("gender", "\ud800"),
    "type_nul": _set("resourceType", "Pat\u0000ient"),
    "id_surrogate": _set("id", "x\udfff"),
    "deep": _set("extension", DEEP),
    "given_ints": _given_ints,
    "conditional": _set("subject", {"reference": "Patient?name=smith"}),
    "dangling": _set("subject", {"reference": "urn:uuid:nowhere"}),
}


def _sample_files(stack: Settings) -> list[Path]:
    folder = require_shared(samples_dir(stack.root), "Synthea sample bundles")
    return sorted(folder.glob("*.json"))


def _truncate(stack: Settings) -> None:
    tables = ["resource", "quarantine", "unresolved_reference", *(t.table for t in shipped_views())]
    with psycopg.connect(stack.dsn("hospital", "hospital_app")) as conn:
        conn.execute("TRUNCATE " + ", ".join(f"fhir.{t}" for t in tables))


def _db_counts(stack: Settings, path: Path) -> tuple[int, int]:
    with psycopg.connect(stack.dsn("hospital", "analyst")) as conn:
        loaded = conn.execute(
            "SELECT count(*) FROM fhir.resource WHERE source_file = %s", (str(path),)
        ).fetchone()
        quarantined = conn.execute(
            "SELECT count(*) FROM fhir.quarantine WHERE source_file = %s", (str(path),)
        ).fetchone()
    assert loaded is not None and quarantined is not None
    return int(loaded[0]), int(quarantined[0])


def _cli_ingest(stack: Settings, path: Path) -> tuple[int, str, BaseException | None]:
    with mock.patch.object(fhir_cli, "get_settings", return_value=stack):
        result = CliRunner().invoke(fhir_cli.app, ["ingest", str(path)])
    exc = result.exception if not isinstance(result.exception, SystemExit) else None
    return result.exit_code, result.output, exc


mutation = st.tuples(st.sampled_from(sorted(MUTATIONS)), st.integers(min_value=0))
extra = st.sampled_from(["duplicate", "delete", "garbage_entry"])


@settings(
    max_examples=30,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(
    file_index=st.integers(min_value=0, max_value=9),
    size=st.integers(min_value=5, max_value=60),
    mutations=st.lists(mutation, max_size=6),
    extras=st.lists(st.tuples(extra, st.integers(min_value=0)), max_size=3),
    ndjson=st.booleans(),
)
def test_every_entry_is_loaded_or_quarantined(
    stack: Settings,
    tmp_path_factory: pytest.TempPathFactory,
    file_index: int,
    size: int,
    mutations: list[tuple[str, int]],
    extras: list[tuple[str, int]],
    ndjson: bool,
) -> None:
    files = _sample_files(stack)
    bundle = json.loads(files[file_index % len(files)].read_text("utf-8"))
    entries: list[Any] = bundle["entry"][:size]
    for kind, at in mutations:
        MUTATIONS[kind](entries[at % len(entries)])
    for kind, at in extras:
        if kind == "duplicate":
            entries.append(json.loads(json.dumps(entries[at % len(entries)])))
        elif kind == "delete":
            entries.append({"request": {"method": "DELETE", "url": "Observation/gone"}})
        else:
            entries.insert(at % len(entries), "not an entry")
    if ndjson:  # one resource per line (the bulk-export form; urn references can't resolve)
        lines = [json.dumps(e.get("resource", e) if isinstance(e, dict) else e) for e in entries]
        text = "\n".join(lines) + "\n"
    else:
        bundle["entry"] = entries
        text = json.dumps(bundle)
    text = text.replace(json.dumps(DEEP), "[" * 950 + "]" * 950)
    path = tmp_path_factory.mktemp("prop") / ("mutated.ndjson" if ndjson else "mutated.json")
    path.write_text(text, "utf-8")
    _truncate(stack)

    report = ingest_paths(stack, [path])

    assert report.entries == len(entries)
    assert report.accounted == report.entries, report.as_dict()
    assert _db_counts(stack, path) == (report.resources, report.quarantined)

    code, output, exc = _cli_ingest(stack, path)
    assert exc is None, repr(exc)
    assert "Traceback" not in output
    assert code == (0 if report.resources or report.delete_requests else 1), output


@settings(
    max_examples=10,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(file_index=st.integers(min_value=0, max_value=9), cut=st.floats(0.0, 0.999))
def test_a_truncated_file_is_quarantined_whole(
    stack: Settings, tmp_path_factory: pytest.TempPathFactory, file_index: int, cut: float
) -> None:
    files = _sample_files(stack)
    data = files[file_index % len(files)].read_bytes()
    path = tmp_path_factory.mktemp("cut") / "truncated.json"
    path.write_bytes(data[: int(len(data) * cut)])  # may cut inside a UTF-8 sequence too
    _truncate(stack)

    report = ingest_paths(stack, [path])

    assert (report.resources, report.quarantined) == (0, 1)
    assert _db_counts(stack, path) == (0, 1)
    code, output, exc = _cli_ingest(stack, path)
    assert exc is None and code == 1 and "Traceback" not in output
