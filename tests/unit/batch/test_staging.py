"""SQL builders of the batch ingest and the export predicate guard (pure)."""

from __future__ import annotations

import pytest

from hospital.batch import files as bf
from hospital.batch import staging
from hospital.batch.export import ExportError, check_predicate


def test_every_column_has_its_checks() -> None:
    cks = staging.checks(bf.TRANSFERS, people_known=True)
    by_col: dict[str, list[str]] = {}
    for c in cks:
        by_col.setdefault(c.column, []).append(c.reason)
    assert by_col["transfer_id"] == ["required value missing", "not a UUID"]
    assert "unknown in people" in by_col["patient_id"]
    assert by_col["transfer_type"] == [
        "required value missing",
        "not one of " + ", ".join(bf.TRANSFER_TYPES),
    ]
    assert "unknown in departments" in by_col["to_department"]
    assert "reason" not in by_col  # free text, optional: nothing to check
    # Optional values are only checked when present.
    admission = next(c for c in cks if c.column == "admission_id")
    assert admission.bad.startswith("CASE WHEN coalesce(s.\"admission_id\", '') = '' THEN false")


def test_patient_reference_only_once_people_are_known() -> None:
    cks = staging.checks(bf.PHARMACY_ORDERS, people_known=False)
    assert not any(c.reason == "unknown in people" for c in cks)


def test_merge_and_events_sql() -> None:
    cks = staging.checks(bf.ADMISSIONS, people_known=False)
    merge = staging.merge(bf.ADMISSIONS, cks)
    assert 'ON CONFLICT ("admission_id") DO UPDATE' in merge
    assert "admissions.discharged_at IS NULL" in merge  # a resend never undoes a discharge
    events = staging.bed_events(bf.ADMISSIONS, cks)
    assert events is not None
    assert "%(day_start)s" in events  # only the day's own admissions are admission events
    assert "seen_by_stream_at" not in events and "stream_offset" not in events
    assert staging.bed_events(bf.PHARMACY_ORDERS, cks) is None
    discharge = staging.merge(bf.DISCHARGES, staging.checks(bf.DISCHARGES, False))
    assert discharge.startswith("UPDATE admissions a SET")


def test_stage_numbers_lines_from_two() -> None:
    assert "IDENTITY (START 2)" in staging.create_stage(bf.DEPARTMENTS)


@pytest.mark.parametrize(
    "where",
    [
        "status = 'admitted'",
        "bed_number > 3 AND (department_code IN ('ICU', 'MED'))",
        "note = 'it''s ; fine'",
    ],
)
def test_predicates_allowed(where: str) -> None:
    assert check_predicate(where) == where


@pytest.mark.parametrize(
    "where",
    [
        "true); DROP TABLE admissions; --",
        "true) UNION SELECT * FROM pg_authid WHERE (true",
        "1=1 -- comment",
        "1=1 /* comment */",
        "x = $$a$$",
        "x = E'\\''",
        "(true",
        "'unterminated",
        "   ",
    ],
)
def test_predicates_refused(where: str) -> None:
    with pytest.raises(ExportError):
        check_predicate(where)


def test_simple_patterns_are_written_without_a_regex() -> None:
    from hospital.batch.fast import pattern_bad

    assert pattern_bad("x", "^[0-9]{13}$") == (
        "NOT (octet_length(x) BETWEEN 13 AND 13 AND ltrim(x, '0123456789') = '')"
    )
    assert "BETWEEN 1 AND 16" in pattern_bad("x", "^[A-Z0-9_]{1,16}$")
    for kept in ("^[A-Z]+$", "^[A-Z]{1,2}", "^[Z-A]{1}$", "^[A-Z]{3,2}$", "^(a|b)$"):
        assert pattern_bad("x", kept).startswith("x !~ ")


def test_fast_path_sql() -> None:
    from hospital.batch import fast

    orders = fast.build(bf.PHARMACY_ORDERS, people_known=True)
    assert orders is not None
    # uuid/int columns are typed by the COPY; timestamps stay text (cast by the insert).
    assert '"order_id" uuid' in orders.create and '"ordered_at" text' in orders.create
    assert orders.copy.startswith(f"COPY {fast.TYPED} (") and "FREEZE true" in orders.copy
    assert 'LEFT JOIN people r1 ON r1.person_id = s."patient_id"' in orders.any_bad
    assert "IS NOT FALSE" in orders.any_bad  # undecidable rules count as bad
    assert 'ascii(s."ordered_at") NOT BETWEEN 48 AND 57' in orders.any_bad
    assert orders.insert.endswith("ORDER BY 1")
    assert "NULLIF(s.\"dispensed_at\", '')::timestamptz" in orders.insert
    no_people = fast.build(bf.PHARMACY_ORDERS, people_known=False)
    assert no_people is not None and "people" not in no_people.any_bad
    assert "ltrim(s.\"drug_code\", 'ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_')" in orders.any_bad
    # The direct path: COPY into the table itself, optional values read as NULL when empty,
    # the timestamps' first bytes the client's to check (not in SQL).
    direct = orders.direct
    assert direct is not None and direct.table == "pharmacy_orders"
    assert direct.copy.startswith('COPY "pharmacy_orders" (')
    assert 'FORCE_NULL ("medication_id", "ordered_by", "dispensed_at")' in direct.copy
    assert direct.timestamps == ((6, True), (7, False), (9, True))
    assert "ascii(" not in direct.any_bad() and 's."ordered_at" IS NULL' in direct.any_bad()
    assert "s.xmin = 7::xid AND" in direct.any_bad("s.xmin = 7::xid")
    departments = fast.build(bf.DEPARTMENTS, people_known=True)
    assert departments is not None and departments.direct is None  # updated_at: not in file
    # Files that make bed events, discharges and self references stay on the strict path.
    assert fast.build(bf.ADMISSIONS, people_known=True) is None
    assert fast.build(bf.DISCHARGES, people_known=True) is None
    assert fast.build(bf.STAFF, people_known=True) is None


def test_small_files_probe_keys_big_files_hash() -> None:
    # A day's file must not hash all of `people` (1 s at 5M people) to check 300 rows.
    assert staging.join_plan(300) is None
    assert staging.join_plan(staging.HASH_JOIN_MIN_ROWS - 1) is None
    assert staging.join_plan(1_000_000) == "SET LOCAL enable_nestloop = off"
