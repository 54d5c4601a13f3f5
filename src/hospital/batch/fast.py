"""The fast paths of a batch file (SQL builders): loading straight into the target, or typed.

Most files are clean and hold only new records. Staging every value as text and then casting,
checking and sorting it costs three times what the load itself does, so such a file first
tries one of two shorter ways, run by :mod:`hospital.batch.fast_load`:

- **direct** (:class:`DirectSql`), when the target is small next to the file (empty, say) and
  holds nothing but its primary key: in one transaction the table is locked, its primary key
  dropped, the file COPYed into the table itself, the new rows checked by one query (the
  rules and the references as hash anti-joins), and the key rebuilt in one sorted pass, which
  also refuses a key twice or a key already there. One write of every row, as ``\\copy`` does.
- **typed** (:class:`FastSql`), any other time: the file is COPYed once into a TEMP table
  whose uuid/int/date columns are typed, one query asks whether any row breaks a rule, and
  when none does the rows go to the target with one ``INSERT ... SELECT ... ORDER BY key`` (in
  key order the primary-key index fills page by page).

Anything else (a value a typed COPY refuses, a rule that fires, a key already in the table, a
duplicate key, a row count or checksum that differs from the manifest) rolls the attempt back
whole and the caller takes the strict path (text staging, quarantine with file, line, column
and reason, ``ON CONFLICT`` merge), which gives the same result it always gave. A fast path
therefore never changes what is loaded, only how fast a clean file loads.

Equivalence with the strict path's fast form: a typed COPY column runs the same input function
as the ``::type`` cast, and ``FORCE_NULL`` reads an optional column's quoted empty value as
NULL, as ``NULLIF(x, '')`` does. Timestamps must start with a digit (which refuses the words
'now', 'epoch' ...): the typed path keeps them as text and tests that in SQL; the direct path
has only the parsed value, so the client checks the first byte of every timestamp while it
sends the file (:mod:`hospital.batch.inflight`) and anything it cannot confirm, a quoted CSV
field included, sends the file the typed way. The direct path needs each target column to be
of exactly the type the strict path casts to (``char(n)`` trims spaces a rule would see).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from psycopg import sql

from hospital.batch.files import Col, FileSpec
from hospital.batch.staging import PROBED, SQL_TYPE, _lit, _q

TYPED = "batch_typed"  # the per-transaction TEMP table of the typed path
STAGE_TYPE = {"uuid": "uuid", "int": "integer", "date": "date", "ts": "text", "text": "text"}
# format_type() of each column type in the target, for the direct path's type check
TARGET_TYPE = {
    "uuid": "uuid",
    "int": "integer",
    "date": "date",
    "ts": "timestamp with time zone",
    "text": "text",
}
# ^[class]{m,n}$ with a class of ASCII letters, digits and '_' only.
_SIMPLE_PATTERN = re.compile(
    r"\^\[((?:[A-Za-z0-9]-[A-Za-z0-9]|[A-Za-z0-9_])+)\]\{(\d+)(?:,(\d+))?\}\$"
)


@dataclass(frozen=True)
class DirectSql:
    """The direct path for one file spec: COPY into the target, then check the new rows."""

    table: str
    columns: tuple[str, ...]  # the file's columns, all of them target columns
    types: tuple[str, ...]  # the target type each must have (``format_type``)
    copy: str
    bad: str  # SQL true for a row that breaks a rule (or that a rule cannot decide)
    joins: str  # the reference joins the rules read
    timestamps: tuple[tuple[int, bool], ...]  # (position, required) of timestamp columns

    def any_bad(self, new_rows: str = "true") -> str:
        """SELECT true when one of the rows ``new_rows`` selects breaks a rule."""
        return (
            f"SELECT count(*) > 0 FROM {_q(self.table)} s {self.joins} "
            f"WHERE {new_rows} AND {self.bad}"
        )


@dataclass(frozen=True)
class FastSql:
    """The statements of the typed path for one file spec, and the direct path if it has one."""

    create: str
    copy: str
    any_bad: str  # SELECT true when some row breaks a rule
    insert: str
    direct: DirectSql | None = None


def pattern_bad(x: str, pattern: str) -> str:
    """SQL true when ``x`` does not match ``pattern`` (POSIX, as ``!~``).

    ``^[class]{m,n}$`` of ASCII characters is written without the regex engine, three times
    cheaper: the length in bytes (one byte per character when every character is in the
    class) and ``ltrim`` by the class, empty when every character is in it. Anything else
    stays a regex.
    """
    m = _SIMPLE_PATTERN.fullmatch(pattern)
    if m is None:
        return f"{x} !~ {sql.Literal(pattern).as_string(None)}"
    chars: list[str] = []
    for first, last, single in re.findall(r"(.)-(.)|(.)", m.group(1)):
        if single:
            chars.append(single)
        elif first <= last:
            chars += [chr(i) for i in range(ord(first), ord(last) + 1)]
        else:  # an invalid range: the regex engine gives the error
            return f"{x} !~ {sql.Literal(pattern).as_string(None)}"
    low, high = int(m.group(2)), int(m.group(3) or m.group(2))
    if low > high:
        return f"{x} !~ {sql.Literal(pattern).as_string(None)}"
    charset = sql.Literal("".join(dict.fromkeys(chars))).as_string(None)
    return f"NOT (octet_length({x}) BETWEEN {low} AND {high} AND ltrim({x}, {charset}) = '')"


def _ref_join(col: Col, alias: str) -> tuple[str, str]:
    """(LEFT JOIN clause, SQL true when found) for ``col``'s reference."""
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


def _rules(
    spec: FileSpec, people_known: bool, typed: dict[str, str]
) -> tuple[list[str], list[str]] | None:
    """(rules that are true for a bad row, the joins they need) over a table whose columns
    have the types ``typed``; a text timestamp must start with a digit, a typed one is only
    tested for presence (its first character is the client's to check). None: unsupported."""
    bad: list[str] = []
    joins: list[str] = []
    for i, col in enumerate(spec.columns):
        x = f"s.{_q(col.name)}"
        as_text = typed[col.type] == "text"
        empty = f"coalesce({x}, '') = ''" if as_text else f"{x} IS NULL"
        if col.required:
            bad.append(empty)
        # Rules below apply to present values only. A required column's emptiness is already
        # one of the OR-ed rules, so the guard would change nothing there: it is left out.
        present = "true" if col.required else f"NOT ({empty})"
        if col.type == "ts" and as_text:
            bad.append(f"({present} AND ascii({x}) NOT BETWEEN 48 AND 57)")
        if col.domain is not None:
            bad.append(f"({present} AND {x} NOT IN ({_lit(col.domain)}))")
        if col.pattern is not None:
            bad.append(f"({present} AND {pattern_bad(x, col.pattern)})")
        if col.positive:
            if col.type != "int":
                return None
            bad.append(f"({present} AND {x} <= 0)")
        if col.ref is not None and (col.ref != "people" or people_known):
            join, found = _ref_join(col, f"r{i}")
            joins.append(join)
            bad.append(f"({present} AND NOT ({found}))")
    return bad, joins


def _undecided(bad: list[str]) -> str:
    """SQL true unless every rule says the row is fine: "IS NOT FALSE", so a rule that cannot
    decide (NULL) sends the file down the strict path."""
    return "(" + (" OR ".join(bad) if bad else "false") + ") IS NOT FALSE"


def build(spec: FileSpec, people_known: bool) -> FastSql | None:
    """The fast-path statements for ``spec``, or None where only the strict path applies.

    Not covered: discharges (an UPDATE of admissions), files that make bed events (their SQL
    reads the text stage), references to another column of the same file, columns validated
    but not loaded.
    """
    if spec.merge == "discharges" or spec.event is not None:
        return None
    if any(c.ref_self or not c.load for c in spec.columns):
        return None
    if any((c.domain or c.pattern) and c.type != "text" for c in spec.columns):
        return None
    rules = _rules(spec, people_known, STAGE_TYPE)
    if rules is None:
        return None
    cols_def = ", ".join(f"{_q(c.name)} {STAGE_TYPE[c.type]}" for c in spec.columns)
    create = f"CREATE TEMP TABLE {TYPED} ({cols_def}) ON COMMIT DROP"
    names = ", ".join(_q(c.name) for c in spec.columns)
    copy = f"COPY {TYPED} ({names}) FROM STDIN WITH (FORMAT csv, HEADER true, FREEZE true)"
    target = [_q(c.name) for c in spec.columns]
    exprs = [_value(c) for c in spec.columns]
    if spec.touch_updated_at:
        target.append("updated_at")
        exprs.append("now()")
    order = ", ".join(str(1 + target.index(_q(k))) for k in spec.key)
    insert = (
        f"INSERT INTO {_q(spec.table)} ({', '.join(target)})\n"
        f"SELECT {', '.join(exprs)} FROM {TYPED} s ORDER BY {order}"
    )
    bad, joins = rules
    any_bad = f"SELECT count(*) > 0 FROM {TYPED} s {' '.join(joins)} WHERE {_undecided(bad)}"
    return FastSql(create, copy, any_bad, insert, _direct(spec, people_known))


def _direct(spec: FileSpec, people_known: bool) -> DirectSql | None:
    if spec.touch_updated_at:  # updated_at would come from the table's default, if any
        return None
    rules = _rules(spec, people_known, TARGET_TYPE)
    if rules is None:
        return None
    names = ", ".join(_q(c.name) for c in spec.columns)
    optional = ", ".join(_q(c.name) for c in spec.columns if not c.required)
    force_null = f", FORCE_NULL ({optional})" if optional else ""
    copy = f"COPY {_q(spec.table)} ({names}) FROM STDIN WITH (FORMAT csv, HEADER true{force_null})"
    bad, joins = rules
    stamps = tuple((i, c.required) for i, c in enumerate(spec.columns) if c.type == "ts")
    return DirectSql(
        table=spec.table,
        columns=tuple(c.name for c in spec.columns),
        types=tuple(TARGET_TYPE[c.type] for c in spec.columns),
        copy=copy,
        bad=_undecided(bad),
        joins=" ".join(joins),
        timestamps=stamps,
    )


def _value(col: Col) -> str:
    """The loaded value, as :func:`hospital.batch.staging.value` gives it from text."""
    x = f"s.{_q(col.name)}"
    if col.type == "ts":
        return f"NULLIF({x}, '')::{SQL_TYPE['ts']}"
    if col.type == "text" and not col.required:
        return f"NULLIF({x}, '')"
    return x
