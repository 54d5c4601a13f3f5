"""The fast path of a batch file: typed COPY, one anti-join check pass, one sorted insert.

Most files are clean and hold only new records. For those, staging every value as text and
then casting, checking and sorting it costs three times what the load itself does. Here the
file is COPYed once into a TEMP table whose uuid/int/date columns are typed (the server parses
each value once, while the client hashes the bytes it sends), then a single query with the
reference tables as hash anti-joins asks whether any row breaks a rule, and when none does the
rows go to the target with one ``INSERT ... SELECT ... ORDER BY key`` (in key order the
primary-key index fills page by page), with the ledger row, in the same transaction.

Anything else (a value the typed COPY refuses, a rule that fires, a key already in the table,
a duplicate key, a row count or checksum that differs from the manifest) rolls the attempt
back whole and the caller takes the strict path (text staging, quarantine with file, line,
column and reason, ``ON CONFLICT`` merge), which gives the same result it always gave. The
fast path therefore never changes what is loaded, only how fast a clean file loads.

Equivalence with the strict path's fast form: a typed COPY column runs the same input function
as the ``::type`` cast; timestamps stay text here (like there: they must start with a digit,
which refuses the words 'now', 'epoch' ...) and are cast by the insert.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from psycopg import sql

from hospital.batch.files import Col, FileSpec
from hospital.batch.staging import PROBED, SQL_TYPE, _lit, _q

if TYPE_CHECKING:
    from hashlib import _Hash

TYPED = "batch_typed"  # the per-transaction TEMP table of the fast path
STAGE_TYPE = {"uuid": "uuid", "int": "integer", "date": "date", "ts": "text", "text": "text"}


@dataclass(frozen=True)
class FastSql:
    """The statements of the fast path for one file spec."""

    create: str
    copy: str
    any_bad: str  # SELECT true when some row breaks a rule
    insert: str


def _ref_join(col: Col, alias: str) -> tuple[str, str]:
    """(LEFT JOIN clause, SQL true when found) for ``col``'s reference, None if unsupported."""
    x = f"s.{_q(col.name)}"
    col_ref = "SELECT person_id FROM people" if col.ref == "people" else col.ref or ""
    probed = next((p for k, p in PROBED.items() if col_ref.endswith(f"FROM {k}")), None)
    typed = x if col.type in ("uuid", "int", "date") else f"NULLIF({x}, '')"
    if probed:
        table, key = probed
        join = f"LEFT JOIN {table} {alias} ON {alias}.{key} = {typed}"
        found = f"{alias}.{key} IS NOT NULL"
    else:
        # A reference list may repeat a value: DISTINCT keeps the join one-to-one.
        join = f"LEFT JOIN (SELECT DISTINCT k FROM ({col_ref}) q(k)) {alias} ON {alias}.k = {typed}"
        found = f"{alias}.k IS NOT NULL"
    if col.ref_extra:
        found = f"({found} OR {x}::text IN ({_lit(col.ref_extra)}))"
    return join, found


def build(spec: FileSpec, people_known: bool) -> FastSql | None:
    """The fast-path statements for ``spec``, or None where only the strict path applies.

    Not covered: discharges (an UPDATE of admissions), files that make bed events (their SQL
    reads the text stage), references to another column of the same file.
    """
    if spec.merge == "discharges" or spec.event is not None:
        return None
    if any(c.ref_self for c in spec.columns):
        return None
    if any((c.domain or c.pattern) and c.type != "text" for c in spec.columns):
        return None
    bad: list[str] = []
    joins: list[str] = []
    for i, col in enumerate(spec.columns):
        x = f"s.{_q(col.name)}"
        as_text = STAGE_TYPE[col.type] == "text"
        empty = f"coalesce({x}, '') = ''" if as_text else f"{x} IS NULL"
        if col.required:
            bad.append(empty)
        # Rules below apply to present values only. A required column's emptiness is already
        # one of the OR-ed rules, so the guard would change nothing there: it is left out.
        present = "true" if col.required else f"NOT ({empty})"
        if col.type == "ts":
            bad.append(f"({present} AND ascii({x}) NOT BETWEEN 48 AND 57)")
        if col.domain is not None:
            bad.append(f"({present} AND {x} NOT IN ({_lit(col.domain)}))")
        if col.pattern is not None:
            bad.append(f"({present} AND {x} !~ {sql.Literal(col.pattern).as_string(None)})")
        if col.positive:
            if col.type != "int":
                return None
            bad.append(f"({present} AND {x} <= 0)")
        if col.ref is not None and (col.ref != "people" or people_known):
            join, found = _ref_join(col, f"r{i}")
            joins.append(join)
            bad.append(f"({present} AND NOT ({found}))")
    cols_def = ", ".join(f"{_q(c.name)} {STAGE_TYPE[c.type]}" for c in spec.columns)
    create = f"CREATE TEMP TABLE {TYPED} ({cols_def}) ON COMMIT DROP"
    names = ", ".join(_q(c.name) for c in spec.columns)
    copy = f"COPY {TYPED} ({names}) FROM STDIN WITH (FORMAT csv, HEADER true, FREEZE true)"
    # "IS NOT FALSE": a rule that cannot decide (NULL) sends the file down the strict path.
    # A count, not EXISTS: a clean file is scanned whole anyway, and the count's cost estimate
    # lets the planner JIT-compile the long rule expression.
    rules = " OR ".join(bad) if bad else "false"
    any_bad = f"SELECT count(*) > 0 FROM {TYPED} s {' '.join(joins)} WHERE ({rules}) IS NOT FALSE"
    loaded = [c for c in spec.columns if c.load]
    target = [_q(c.name) for c in loaded]
    exprs = [_value(c) for c in loaded]
    if spec.touch_updated_at:
        target.append("updated_at")
        exprs.append("now()")
    order = ", ".join(str(1 + target.index(_q(k))) for k in spec.key)
    insert = (
        f"INSERT INTO {_q(spec.table)} ({', '.join(target)})\n"
        f"SELECT {', '.join(exprs)} FROM {TYPED} s ORDER BY {order}"
    )
    return FastSql(create, copy, any_bad, insert)


def _value(col: Col) -> str:
    """The loaded value, as :func:`hospital.batch.staging.value` gives it from text."""
    x = f"s.{_q(col.name)}"
    if col.type == "ts":
        return f"NULLIF({x}, '')::{SQL_TYPE['ts']}"
    if col.type == "text" and not col.required:
        return f"NULLIF({x}, '')"
    return x


def hashed_blocks(path: Path, digest: _Hash, chunk: int) -> Iterator[bytes]:
    """The file's blocks, each added to ``digest`` as it is read (one read, two uses)."""
    with path.open("rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
            yield block
