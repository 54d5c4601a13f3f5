"""The fast paths (direct COPY into the target, or typed COPY + one check pass + sorted insert)
against the strict path.

Whatever path a file takes, the tables end the same: a clean file loads identically both ways,
and every case the fast paths must not decide (a rule that fires, a timestamp word, a key
already loaded, a key twice in the file) falls back to the strict path and its quarantine.
"""

from __future__ import annotations

import csv
import hashlib
import io
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from hospital.batch import fast as fastpath
from hospital.batch import fast_load, ingest
from hospital.batch import files as bf
from hospital.settings import Settings
from hospital.simulator.api import build_population
from hospital.simulator.config import SimConfig
from tests.integration.test_batch import edit_csv, rewrite_manifest, rows, truncate, write_world

pytestmark = pytest.mark.integration

SEED = 909
ORDERS = "SELECT * FROM pharmacy_orders ORDER BY order_id"


@pytest.fixture
def env(stack: Settings) -> Iterator[Settings]:
    lake = stack.lake_path / "batch-fast-tests" / uuid.uuid4().hex[:10]
    truncate(stack)
    yield stack.model_copy(update={"lake_dir": lake})
    truncate(stack)


@pytest.fixture
def fast_results(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, bool]]:
    """(file, whether the fast path loaded it) for every file that tried it."""
    seen: list[tuple[str, bool]] = []
    real = ingest._fast_load

    def spy(conn: Any, path: Any, rel: str, *args: Any) -> ingest.FileResult | None:
        out = real(conn, path, rel, *args)
        seen.append((rel, out is not None))
        return out

    monkeypatch.setattr(ingest, "_fast_load", spy)
    return seen


@pytest.fixture
def direct_results(monkeypatch: pytest.MonkeyPatch) -> list[tuple[Path, bool]]:
    """(file, whether the direct path loaded it) for every file that tried the direct path."""
    seen: list[tuple[Path, bool]] = []
    real = fast_load._direct

    def spy(cur: Any, plan: Any, path: Path, *args: Any) -> Any:
        try:
            out = real(cur, plan, path, *args)
        except psycopg.Error:
            seen.append((path, False))
            raise
        seen.append((path, out[0] is not None))
        return out

    monkeypatch.setattr(fast_load, "_direct", spy)
    return seen


def test_clean_file_loads_the_same_by_both_paths(
    env: Settings, fast_results: list[tuple[str, bool]], monkeypatch: pytest.MonkeyPatch
) -> None:
    config = SimConfig.from_settings(env, num_people=20_000, seed=SEED)
    write_world(env, (config, build_population(config)), 2)
    report = ingest.ingest_pending(env)
    assert report.errors == [] and report.rows_rejected == 0
    fast_files = {rel for rel, ok in fast_results if ok}
    orders = [f for f in fast_files if f.endswith("pharmacy_orders.csv")]
    assert len(orders) == 2 and any(f.endswith("people.csv") for f in fast_files)
    by_fast = rows(env, ORDERS)
    assert len(by_fast) > 10
    ledger_fast = rows(
        env,
        "SELECT path, rows_staged, rows_loaded, rows_rejected, sha256 "
        "FROM batch_ledger ORDER BY path",
    )

    # Same files again, strict path only: the same rows, the same ledger figures.
    with psycopg.connect(env.dsn("hospital", "hospital_app")) as conn:
        conn.execute("TRUNCATE pharmacy_orders")
        conn.execute("DELETE FROM batch_ledger WHERE path LIKE '%%pharmacy_orders.csv'")
    monkeypatch.setattr(fastpath, "build", lambda spec, people_known: None)
    again = ingest.ingest_pending(env)
    assert again.loaded == 2 and again.errors == []
    assert rows(env, ORDERS) == by_fast
    assert (
        rows(
            env,
            "SELECT path, rows_staged, rows_loaded, rows_rejected, sha256 "
            "FROM batch_ledger ORDER BY path",
        )
        == ledger_fast
    )


def test_the_initial_people_file_loads_straight_into_its_table(
    env: Settings, direct_results: list[tuple[Path, bool]]
) -> None:
    """The initial load's biggest file (people.csv: 5,000,000 rows by default) takes the direct
    path: national_id and sex are text in the target (hospital_0009), as the rules see them."""
    config = SimConfig.from_settings(env, num_people=20_000, seed=SEED)
    write_world(env, (config, build_population(config)), 1)
    report = ingest.ingest_pending(env)
    assert report.errors == [] and report.rows_rejected == 0
    direct = [(f"{path.parent.name}/{path.name}", ok) for path, ok in direct_results]
    assert ("initial/people.csv", True) in direct
    ids: dict[str, str] = {}
    for drop in sorted((env.lake_path / "batch").glob("*/people.csv")):  # + the day's newborns
        with drop.open(newline="") as f:
            ids.update((r["person_id"], r["national_id"]) for r in csv.DictReader(f))
    assert len(ids) > 20_000
    assert dict(rows(env, "SELECT person_id::text, national_id FROM people")) == ids
    assert rows(
        env,
        "SELECT conname FROM pg_constraint WHERE conrelid = 'people'::regclass AND contype = 'p'",
    ) == [("people_pkey",)]


def test_what_the_fast_path_cannot_decide_goes_the_strict_way(
    env: Settings, fast_results: list[tuple[str, bool]]
) -> None:
    config = SimConfig.from_settings(env, num_people=20_000, seed=SEED)
    write_world(env, (config, build_population(config)), 2)
    first, second = sorted(p for p in env.lake_path.glob("batch/date=*") if p.is_dir())
    name = "pharmacy_orders.csv"
    text = (first / name).read_text().splitlines()
    n = len(text) - 1
    assert n >= 6
    # Day 1: a timestamp word the cast would take, an unknown patient, a key twice.
    dup_key = text[1].split(",", 1)[0]
    edit_csv(
        first / name,
        {
            1: {"ordered_at": "now"},
            2: {"patient_id": str(uuid.uuid4())},
            4: {"order_id": dup_key},
        },
    )
    rewrite_manifest(first, name)
    # Day 2: resends the first valid order of day 1 with a new quantity (a key already loaded).
    resent = (first / name).read_text().splitlines()[1].split(",")
    resent[4] = "999"
    lines = (second / name).read_text().splitlines()
    (second / name).write_text("\n".join([*lines, ",".join(resent)]) + "\n")
    rewrite_manifest(second, name)

    report = ingest.ingest_pending(env)
    assert report.errors == []
    rel1, rel2 = f"{first.name}/{name}", f"{second.name}/{name}"
    assert (rel1, False) in fast_results and (rel2, False) in fast_results
    by_file = {f.path: f for f in report.files}
    assert (by_file[rel1].rows_loaded, by_file[rel1].rows_rejected) == (n - 3, 3)
    assert rows(
        env,
        "SELECT line, column_name, reason FROM batch_quarantine WHERE file = %s "
        "ORDER BY line, column_name",
        (rel1,),
    ) == [
        (3, "ordered_at", "not a valid timestamp (ISO 8601)"),
        (4, "patient_id", "unknown in people"),
        (6, "order_id", "duplicate key, first at line 2"),
    ]
    # The resend updated the order loaded the day before; the refused rows never loaded.
    assert rows(env, "SELECT quantity FROM pharmacy_orders WHERE order_id = %s", (dup_key,)) == [
        (999,)
    ]
    refused = [text[2].split(",", 1)[0], text[3].split(",", 1)[0]]
    assert rows(
        env, "SELECT count(*) FROM pharmacy_orders WHERE order_id = ANY(%s::uuid[])", (refused,)
    ) == [(0,)]
    assert (by_file[rel2].rows_loaded, by_file[rel2].rows_rejected) == (len(lines), 0)


def _variant(
    source: Path, quoting: int = csv.QUOTE_MINIMAL, eol: str = "\n", times: int = 1, **edits: str
) -> str:
    """The orders of ``source`` (``times`` over) under new ids, written with ``quoting``/``eol``;
    ``edits`` (column=value) change the second row ("@first" there: the first row's value)."""
    records = [dict(r) for r in csv.DictReader(io.StringIO(source.read_text()))] * times
    records = [{**r, "order_id": str(uuid.uuid4())} for r in records]
    records[1].update({k: records[0][k] if v == "@first" else v for k, v in edits.items()})
    buf = io.StringIO(",".join(records[0]) + eol)  # the header as the ingestor expects it
    buf.seek(0, io.SEEK_END)
    w = csv.DictWriter(buf, fieldnames=list(records[0]), lineterminator=eol, quoting=quoting)
    w.writerows(records)
    return buf.getvalue().replace("@quoted-empty", '""')


def _load_each(env: Settings, lake: str, texts: list[tuple[str, bool]]) -> list[Any]:
    """Drop and ingest each text on its own (emptying pharmacy_orders first unless told not
    to): the orders table, the file's quarantine and its ledger figures after each."""
    settings = env.model_copy(update={"lake_dir": env.lake_path / lake})
    name = "pharmacy_orders.csv"
    with psycopg.connect(env.dsn("hospital", "hospital_app")) as conn:
        conn.execute("DELETE FROM batch_ledger WHERE path LIKE 'date=2099-%%'")
        conn.execute("DELETE FROM batch_quarantine WHERE file LIKE 'date=2099-%%'")
    states = []
    for i, (text, empty_first) in enumerate(texts, start=1):
        if empty_first:
            with psycopg.connect(env.dsn("hospital", "hospital_app")) as conn:
                conn.execute("TRUNCATE pharmacy_orders")
        folder = settings.lake_path / "batch" / f"date=2099-01-{i:02d}"
        folder.mkdir(parents=True)
        (folder / name).write_bytes(text.encode())
        data = (folder / name).read_bytes()
        entry = bf.ManifestEntry(name, data.count(b"\n") - 1, hashlib.sha256(data).hexdigest())
        manifest = bf.Manifest(drop=folder.name, files={name: entry})
        (folder / bf.MANIFEST).write_text(manifest.to_json())
        report = ingest.ingest_pending(settings)
        assert report.errors == [] and report.loaded == 1
        rel = f"{folder.name}/{name}"
        states.append(
            (
                rows(env, ORDERS),
                rows(
                    env,
                    "SELECT line, column_name, reason, value FROM batch_quarantine "
                    "WHERE file = %s ORDER BY 1, 2",
                    (rel,),
                ),
                rows(
                    env,
                    "SELECT rows_staged, rows_loaded, rows_rejected FROM batch_ledger "
                    "WHERE path = %s",
                    (rel,),
                ),
            )
        )
    return states


def test_direct_typed_and_strict_paths_agree_on_unusual_files(
    env: Settings, monkeypatch: pytest.MonkeyPatch, direct_results: list[tuple[Path, bool]]
) -> None:
    """Quoted fields, CRLF lines, a leading space, a timestamp word, a code the pattern refuses,
    a key twice: each file loads the same whichever path takes it; the direct path takes the
    clean plain ones and refuses the rest without a trace."""
    config = SimConfig.from_settings(env, num_people=20_000, seed=SEED)
    write_world(env, (config, build_population(config)), 1)
    assert ingest.ingest_pending(env).errors == []  # people and staff the orders refer to
    direct_results.clear()  # only the variants below
    (day,) = sorted(p for p in env.lake_path.glob("batch/date=*") if p.is_dir())
    orders = day / "pharmacy_orders.csv"
    variants = [  # (text, whether the direct path loads it: None when it cannot confirm it)
        (_variant(orders), True),
        (_variant(orders, quoting=csv.QUOTE_ALL), None),  # quotes: not for the client's check
        (_variant(orders, eol="\r\n"), True),
        (_variant(orders, medication_id="@quoted-empty"), None),  # a quoted empty value: NULL
        (_variant(orders, ordered_at=" 2020-01-01T00:00:00+00:00"), None),  # not a digit first
        (_variant(orders, ordered_at="epoch"), None),
        (_variant(orders, drug_code="para"), False),  # the pattern (without a regex) refuses
        (_variant(orders, drug_code="ÄB"), False),
        (_variant(orders, order_id="@first"), False),  # a key twice: the key rebuild fails
    ]
    # Each into an empty table; last, files of new ids into the table the one before left
    # (not empty: the direct path checks only the rows it wrote, and still finds a bad one).
    texts = [
        *((text, True) for text, _ in variants),
        (_variant(orders), False),
        (_variant(orders, times=2, drug_code="para"), False),
    ]
    fast = _load_each(env, "fast", texts)
    expected = [(f"date=2099-01-{i:02d}", ok) for i, (_, ok) in enumerate(variants, 1)]
    direct = [(path.parent.name, ok) for path, ok in direct_results]
    assert direct == [
        *(e for e in expected if e[1] is not None),
        ("date=2099-01-10", True),
        ("date=2099-01-11", False),
    ]
    quarantined = [q for _, q, _ in fast]
    # A leading space, a word: line 3 refused, like a code the pattern refuses.
    assert quarantined[4][0][:3] == quarantined[5][0][:3]
    assert quarantined[4][0][:3] == (3, "ordered_at", "not a valid timestamp (ISO 8601)")
    assert quarantined[6][0][:3] == quarantined[7][0][:3] == (3, "drug_code", "bad format")
    assert quarantined[8][0][:3] == (3, "order_id", "duplicate key, first at line 2")
    assert quarantined[10][0][:3] == (3, "drug_code", "bad format")
    assert [q for i, q in enumerate(quarantined) if i not in (4, 5, 6, 7, 8, 10)] == [[]] * 5
    assert rows(
        env,
        "SELECT conname FROM pg_constraint WHERE conrelid = 'pharmacy_orders'::regclass "
        "AND contype = 'p'",
    ) == [("pharmacy_orders_pkey",)]

    # The same files by the strict path only.
    monkeypatch.setattr(fastpath, "build", lambda spec, people_known: None)
    assert _load_each(env, "strict", texts) == fast


@pytest.mark.parametrize(
    "pattern",
    [c.pattern for c in bf.SPECS["staff.csv"].columns if c.pattern]
    + ["^[A-Z0-9_]{1,16}$", "^[A-Z0-9_]{1,32}$", "^[a-c_]{2}$"],
)
def test_patterns_without_a_regex_decide_as_the_regex(stack: Settings, pattern: str) -> None:
    values = [
        "",
        "A",
        "AB_9",
        "a",
        "A B",
        "A\n",
        "\nA",
        "Ä",
        "ÄB",
        "A-B",
        "_",
        "0" * 13,
        "0" * 12,
        "0" * 14,
        "A" * 16,
        "A" * 17,
        "A" * 32,
        "A" * 33,
        "ab",
        "abc",
        "b_",
        "a\u00e9",
    ]
    with psycopg.connect(stack.dsn("hospital", "hospital_app")) as conn:
        got = conn.execute(
            f"SELECT x, x !~ %(p)s, {fastpath.pattern_bad('x', pattern)} "
            "FROM unnest(%(v)s::text[]) x",
            {"p": pattern, "v": values},
        ).fetchall()
    assert [(x, regex) for x, regex, _ in got] == [(x, ours) for x, _, ours in got]
