"""Drop layout, manifest and header checks (pure, no database)."""

from __future__ import annotations

import hashlib
from datetime import date
from pathlib import Path

import polars as pl
import pytest

from hospital.batch import files as bf
from hospital.batch import writer
from hospital.errors import IngestError


def test_manifest_round_trip() -> None:
    m = bf.Manifest(drop="date=2020-01-02")
    m.files["admissions.csv"] = bf.ManifestEntry("admissions.csv", 3, "a" * 64)
    back = bf.Manifest.parse(m.to_json(), "x")
    assert back.files == m.files
    assert back.schema_version == bf.SCHEMA_VERSION


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("not json", "not a valid manifest"),
        ('{"files": []}', "not a valid manifest"),
        ('{"schema_version": 99, "files": []}', "schema_version 99"),
        (
            '{"schema_version": 1, "files": [{"file": "a.csv", "rows": 1, "sha256": "zz"}]}',
            "bad entry",
        ),
        (
            '{"schema_version": 1, "files": [{"file": "../a.csv", "rows": 1, "sha256": "'
            + "a" * 64
            + '"}]}',
            "bad entry",
        ),
    ],
)
def test_manifest_errors_name_the_file(text: str, fragment: str) -> None:
    with pytest.raises(IngestError) as err:
        bf.Manifest.parse(text, "/lake/batch/date=2020-01-01/manifest.json")
    assert fragment in str(err.value)
    assert "/lake/batch/date=2020-01-01/manifest.json" in str(err.value)


def test_missing_manifest(tmp_path: Path) -> None:
    with pytest.raises(IngestError, match="manifest missing"):
        bf.Manifest.read(tmp_path)


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def test_check_header(tmp_path: Path) -> None:
    spec = bf.DEPARTMENTS
    good = _write(tmp_path / "ok.csv", f"{spec.header}\nICU,Intensive care,ward,10\n".encode())
    bf.check_header(good, spec)  # no error
    cases = {
        b"": "empty file",
        b"department_code,name,kind\nICU,x,y\n": "wrong or missing header",
        b"ICU,Intensive care,ward,10\n": "wrong or missing header",
        f"{spec.header}\nICU,Intensive ca".encode(): "truncated",
        b"\xff\xfe" + spec.header.encode() + b"\n": "not UTF-8",
    }
    for i, (data, fragment) in enumerate(cases.items()):
        path = _write(tmp_path / f"bad{i}.csv", data)
        with pytest.raises(IngestError) as err:
            bf.check_header(path, spec)
        assert fragment in str(err.value)
        assert str(path) in str(err.value)


def test_drop_names_and_order(tmp_path: Path) -> None:
    root = bf.batch_root(tmp_path)
    for name in ("date=2020-01-02", "initial", "date=2020-01-01", ".tmp-date=2020-01-03-1"):
        (root / name).mkdir(parents=True)
    assert [p.name for p in bf.list_drops(tmp_path)] == [
        "initial",
        "date=2020-01-01",
        "date=2020-01-02",
    ]
    assert bf.drop_day("date=2020-01-02") == date(2020, 1, 2)
    assert bf.drop_day("initial") is None
    with pytest.raises(IngestError):
        bf.drop_day("date=2020-13-01")
    with pytest.raises(IngestError):
        bf.drop_day("yesterday")


def test_write_drop_is_complete_and_hashes_match(tmp_path: Path) -> None:
    frame = writer.departments_frame()
    target = tmp_path / "batch" / "initial"
    writer.write_drop(target, {"departments.csv": frame})
    manifest = bf.Manifest.read(target)
    entry = manifest.files["departments.csv"]
    data = (target / "departments.csv").read_bytes()
    assert entry.sha256 == hashlib.sha256(data).hexdigest()
    assert entry.rows == frame.height == data.count(b"\n") - 1
    assert data.splitlines()[0].decode() == bf.DEPARTMENTS.header
    assert not [p for p in target.parent.iterdir() if p.name.startswith(".")]
    # An existing drop is never rewritten.
    before = (target / bf.MANIFEST).stat().st_mtime_ns
    writer.write_drop(target, {"departments.csv": frame.head(1)})
    assert (target / bf.MANIFEST).stat().st_mtime_ns == before


def test_failed_write_leaves_nothing(tmp_path: Path) -> None:
    target = tmp_path / "batch" / "date=2020-01-01"
    broken = pl.DataFrame({"transfer_id": ["x"]})  # lacks the other columns
    with pytest.raises(IngestError, match="lacks column"):
        writer.write_drop(
            target, {"departments.csv": writer.departments_frame(), "transfers.csv": broken}
        )
    assert not target.exists()
    assert list(target.parent.iterdir()) == []


def test_specs_cover_every_file() -> None:
    names = {s.name for s in bf.INITIAL_FILES} | {s.name for s in bf.DAY_FILES}
    assert names == set(bf.SPECS)
    assert {
        "people.csv",
        "doctors.csv",
        "staff.csv",
        "hospital_patients.csv",
        "staff_assignments.csv",
        "departments.csv",
    } == {s.name for s in bf.INITIAL_FILES}
    for spec in bf.SPECS.values():
        assert set(spec.key) <= {c.name for c in spec.columns}
