"""SQL for one batch file: staging table, validation checks, merge, bed events (pure builders).

Every CSV value is staged as text; each :class:`Check` is a boolean SQL expression that is true
when the value is bad, guarded so it never raises (casts only run after their ``batch_is_*``
check passed, inside CASE, whose evaluation order PostgreSQL guarantees). A row is valid when no
check fires; the merge casts only valid rows.
"""

from __future__ import annotations

from dataclasses import dataclass

from psycopg import sql

from hospital.batch.files import Col, FileSpec
from hospital.simulator.events import EVENT_NAMESPACE

STAGE = "batch_stage"  # the per-transaction TEMP staging table
BAD = "batch_bad"  # lines the fast checks refused (TEMP, per transaction)
SQL_TYPE = {"uuid": "uuid", "text": "text", "int": "integer", "date": "date", "ts": "timestamptz"}
TYPE_CHECK = {
    "uuid": ("batch_is_uuid", "not a UUID"),
    "int": ("batch_is_int", "not an integer"),
    "date": ("batch_is_date", "not a valid date (YYYY-MM-DD)"),
    "ts": ("batch_is_ts", "not a valid timestamp (ISO 8601)"),
}
# References to large tables are probed through their primary key row by row; small ones are
# hashed once (IN over a subquery), which is much cheaper per row.
PROBED = {"people": ("people", "person_id"), "admissions": ("admissions", "admission_id")}
# From this many file rows on, the checks and merges join by hashing; below it the planner
# probes the reference tables' keys. PostgreSQL 15 hashes the *inner* side of an anti-join,
# i.e. all of ``people``: ~1 s at 5,000,000 people whatever the file's size, where a day's file
# of a few hundred rows probes the primary key in milliseconds (a 365-day run at 5M people fell
# a quarter behind on exactly this).
HASH_JOIN_MIN_ROWS = 50_000


def join_plan(rows: int) -> str | None:
    """The planner setting for a file of ``rows`` rows (None: the planner's own choice).

    A big file forces hash joins: the fresh TEMP table has no statistics, and a wrong guess
    would probe a big reference table row by row a million times.
    """
    return "SET LOCAL enable_nestloop = off" if rows >= HASH_JOIN_MIN_ROWS else None


@dataclass(frozen=True)
class Check:
    """One rule for one column.

    ``bad``: true when the value fails; never raises (the *strict* form, used to name the
    reason of every bad value). ``fast``: the same rule written for speed: it may raise on a
    malformed value (a cast), which sends the whole file down the strict path; ``None`` when
    the rule is enforced by ``semi`` instead, an EXISTS the planner turns into a hash join.
    """

    column: str
    reason: str
    bad: str
    fast: str | None = None
    semi: str | None = None


def _lit(values: tuple[str, ...]) -> str:
    return ", ".join(sql.Literal(v).as_string(None) for v in values)


def _q(name: str) -> str:
    return sql.Identifier(name).as_string(None)


def value(col: Col, alias: str = "s") -> str:
    """The typed value of ``col`` (NULL when empty); only valid on rows that passed the checks."""
    ref = f"{alias}.{_q(col.name)}"
    if col.type == "text":
        return ref if col.required else f"NULLIF({ref}, '')"
    return f"NULLIF({ref}, '')::{SQL_TYPE[col.type]}"


def _ref_found(col: Col, typed: str) -> tuple[str, bool]:
    """(SQL true when the value is a known reference, whether it is a probe of a big table)."""
    x = f"s.{_q(col.name)}"
    col_ref = "SELECT person_id FROM people" if col.ref == "people" else col.ref or ""
    probed = next((p for k, p in PROBED.items() if col_ref.endswith(f"FROM {k}")), None)
    if probed:
        table, key = probed
        found = f"EXISTS (SELECT 1 FROM {table} r WHERE r.{key} = {typed})"
    else:
        found = f"{typed} IN ({col_ref})"
    if col.ref_extra:
        found = f"({found} OR {x} IN ({_lit(col.ref_extra)}))"
    if col.ref_self:
        other = f"{STAGE}.{_q(col.ref_self)}"
        found = f"({found} OR {x} IN (SELECT {other} FROM {STAGE}))"
    return found, probed is not None and not col.ref_extra and not col.ref_self


def checks(spec: FileSpec, people_known: bool) -> list[Check]:
    """Every check of every column, in header order."""
    out: list[Check] = []
    for col in spec.columns:
        x = f"s.{_q(col.name)}"
        empty = f"coalesce({x}, '') = ''"
        if col.required:
            out.append(Check(col.name, "required value missing", empty, empty))
        # (strict bad-expression assuming non-empty, fast one, semi-join, reason)
        conds: list[tuple[str, str | None, str | None, str]] = []
        typed = f"{x}::{SQL_TYPE[col.type]}" if col.type != "text" else x
        if col.type in TYPE_CHECK:
            fn, reason = TYPE_CHECK[col.type]
            # Fast: the cast itself validates (and raises). Loaded columns are cast by the
            # merge anyway; others are cast here. Timestamps must carry their UTC offset.
            fast_type = f"{typed} IS NULL" if not col.load else "false"
            if col.type == "ts":
                # The cast checks the rest; this only refuses its words ('now', 'epoch' ...).
                fast_type = f"ascii({x}) NOT BETWEEN 48 AND 57"
            conds.append((f"NOT {fn}({x})", fast_type, None, reason))
            type_ok = f"{fn}({x})"
        else:
            type_ok = "true"
        if col.domain is not None:
            bad = f"{x} NOT IN ({_lit(col.domain)})"
            conds.append((bad, bad, None, f"not one of {', '.join(col.domain)}"))
        if col.pattern is not None:
            bad = f"{x} !~ {sql.Literal(col.pattern).as_string(None)}"
            conds.append((bad, bad, None, "bad format"))
        if col.positive:
            strict = f"CASE WHEN {type_ok} THEN {x}::bigint <= 0 ELSE false END"
            conds.append((strict, f"{x}::bigint <= 0", None, "not > 0"))
        if col.ref is not None and (col.ref != "people" or people_known):
            found, probed = _ref_found(col, typed)
            target = "people" if col.ref == "people" else col.ref.rsplit(" ", 1)[-1]
            strict = f"CASE WHEN {type_ok} THEN NOT {found} ELSE false END"
            if probed and col.required:
                conds.append((strict, None, found, f"unknown in {target}"))
            else:
                conds.append((strict, f"NOT {found}", None, f"unknown in {target}"))
        for bad, fast, semi, reason in conds:
            guarded = f"CASE WHEN {empty} THEN false ELSE {bad} END"
            # "false": nothing to test apart from the merge's own cast.
            fast_guarded = (
                None if fast in (None, "false") else f"CASE WHEN {empty} THEN false ELSE {fast} END"
            )
            out.append(Check(col.name, reason, guarded, fast_guarded, semi))
    return out


def ok_predicate(cks: list[Check], fast: bool = False) -> str:
    """SQL true for a valid row. ``fast`` may raise on a malformed value (see :class:`Check`)."""
    if not fast:
        return "NOT (" + "\n  OR ".join(c.bad for c in cks) + ")" if cks else "true"
    bads = [c.fast for c in cks if c.fast is not None]
    parts = ["NOT (" + "\n  OR ".join(bads) + ")"] if bads else ["true"]
    parts += [c.semi for c in cks if c.semi is not None]
    return " AND ".join(parts)


def create_stage(spec: FileSpec) -> str:
    # Line numbers come from an identity filled in COPY order: the header is line 1.
    cols = ", ".join(f"{_q(c.name)} text" for c in spec.columns)
    return (
        f"CREATE TEMP TABLE {STAGE} (line integer GENERATED ALWAYS AS IDENTITY (START 2), "
        f"{cols}) ON COMMIT DROP"
    )


def copy_stage(spec: FileSpec) -> str:
    cols = ", ".join(_q(c.name) for c in spec.columns)
    # FREEZE: the table is new in this transaction, so rows need no visibility hints later.
    return f"COPY {STAGE} ({cols}) FROM STDIN WITH (FORMAT csv, HEADER true, FREEZE true)"


def quarantine(cks: list[Check], extra_where: str = "true") -> str:
    """Insert one quarantine row per failing check of every invalid row."""
    values = ",\n    ".join(
        f"({sql.Literal(c.column).as_string(None)}, {sql.Literal(c.reason).as_string(None)}, "
        f"s.{_q(c.column)}, {c.bad})"
        for c in cks
    )
    return (
        "INSERT INTO batch_quarantine (file, sha256, line, column_name, reason, value)\n"
        "SELECT %(file)s, %(sha)s, s.line, v.col, v.reason, left(v.val, 200)\n"
        f"FROM {STAGE} s CROSS JOIN LATERAL (VALUES\n    {values}\n) AS v(col, reason, val, bad)\n"
        f"WHERE NOT ({ok_predicate(cks)}) AND v.bad AND {extra_where}"
    )


def bad_lines(cks: list[Check]) -> str:
    """A TEMP table of the lines that fail the fast checks (may raise, like them)."""
    return (
        f"CREATE TEMP TABLE {BAD} ON COMMIT DROP AS SELECT line FROM {STAGE} "
        f"EXCEPT SELECT s.line FROM {STAGE} s WHERE {ok_predicate(cks, True)}"
    )


def duplicates(spec: FileSpec, cks: list[Check]) -> str:
    """Quarantine valid rows whose key repeats an earlier line (the first one wins)."""
    keys = ", ".join(f"s.{_q(k)}" for k in spec.key)
    return (
        "INSERT INTO batch_quarantine (file, sha256, line, column_name, reason, value)\n"
        "SELECT %(file)s, %(sha)s, d.line, "
        f"{sql.Literal(','.join(spec.key)).as_string(None)}, "
        "'duplicate key, first at line ' || d.first, d.k\n"
        f"FROM (SELECT s.line, concat_ws(',', {keys}) AS k, "
        f"min(s.line) OVER (PARTITION BY {keys}) AS first FROM {STAGE} s "
        f"WHERE {ok_predicate(cks)}) d WHERE d.line <> d.first"
    )


def _insert_parts(spec: FileSpec) -> tuple[list[str], list[str], list[str]]:
    """Target column names, their typed expressions, and the key's positions (1-based)."""
    loaded = [c for c in spec.columns if c.load]
    names = [_q(c.name) for c in loaded]
    exprs = [value(c) for c in loaded]
    if spec.touch_updated_at:
        names.append("updated_at")
        exprs.append("now()")
    order = [str(1 + names.index(_q(k))) for k in spec.key]
    return names, exprs, order


def copy_merge(spec: FileSpec, cks: list[Check]) -> tuple[str, str] | None:
    """(COPY of the valid rows out, COPY into the target) for a file of new records only.

    ``COPY FROM`` writes the heap in batches, several times cheaper per row than
    ``INSERT ... SELECT``; it cannot resolve conflicts, so a key already in the table makes
    it fail (unique violation) and the caller merges with ``ON CONFLICT`` instead. Binary
    format: the typed values go back as they are, without being printed and parsed again.
    """
    if spec.merge == "discharges":
        return None
    names, exprs, order = _insert_parts(spec)
    out = (
        f"COPY (SELECT {', '.join(exprs)} FROM {STAGE} s WHERE {ok_predicate(cks, True)} "
        f"ORDER BY {', '.join(order)}) TO STDOUT WITH (FORMAT binary)"
    )
    into = f"COPY {_q(spec.table)} ({', '.join(names)}) FROM STDIN WITH (FORMAT binary)"
    return out, into


def merge(spec: FileSpec, cks: list[Check], extra_where: str = "true", fast: bool = False) -> str:
    """Insert or update the valid rows in the target table."""
    where = f"WHERE {ok_predicate(cks, fast)} AND {extra_where}"
    loaded = [c for c in spec.columns if c.load]
    if spec.merge == "discharges":
        sets = ", ".join(
            f"{_q(c.name)} = {value(c)}"
            for c in loaded
            if c.name not in ("admission_id", "patient_id")
        )
        return (
            f"UPDATE admissions a SET {sets} FROM {STAGE} s {where} "
            "AND a.admission_id = s.admission_id::uuid"
        )
    names, exprs, order = _insert_parts(spec)
    updates = [f"{n} = EXCLUDED.{n}" for n in names if n.strip('"') not in spec.key]
    if spec.merge == "admissions":
        # A resent admission never undoes a discharge already recorded.
        updates = [u for u in updates if not u.startswith('"status"')]
        updates.append(
            "status = CASE WHEN admissions.discharged_at IS NULL THEN EXCLUDED.status "
            "ELSE admissions.status END"
        )
    keys = ", ".join(_q(k) for k in spec.key)
    return (
        f"INSERT INTO {_q(spec.table)} ({', '.join(names)})\n"
        f"SELECT {', '.join(exprs)} FROM {STAGE} s {where}\n"
        # In key order, the primary-key index is filled page by page instead of at random.
        f"ORDER BY {', '.join(f'{n}' for n in order)}\n"
        f"ON CONFLICT ({keys}) DO UPDATE SET {', '.join(updates)}"
    )


def _detail(spec: FileSpec, source: str, time_col: str) -> str:
    """jsonb of the record's other fields, as ``Event.detail`` holds them (ISO times)."""
    parts = []
    for c in spec.columns:
        if c.name in (source, time_col, "patient_id"):
            continue
        x = f"NULLIF(s.{_q(c.name)}, '')"
        if c.type == "int":
            val = f"to_jsonb({x}::integer)"
        elif c.type == "ts":
            val = f"to_jsonb(batch_iso({x}::timestamptz))"
        else:
            val = f"to_jsonb({x})"
        parts.append(f"{sql.Literal(c.name).as_string(None)}, {val}")
    return f"jsonb_build_object({', '.join(parts)})"


def bed_events(
    spec: FileSpec, cks: list[Check], extra_where: str = "true", fast: bool = False
) -> str | None:
    """Upsert the file's valid records as confirmed bed events; stream columns untouched.

    Parameters: file, day_start (only admissions on or after it are admission events).
    """
    if spec.event is None:
        return None
    kind, source, time_col, dept = spec.event
    src = f"s.{_q(source)}::uuid"
    at = f"s.{_q(time_col)}::timestamptz"
    since = f" AND {at} >= %(day_start)s" if kind == "admission" else ""
    dept_sql = f"NULLIF(s.{_q(dept)}, '')" if dept else "NULL"
    ns = sql.Literal(str(EVENT_NAMESPACE)).as_string(None)
    return (
        "INSERT INTO bed_events (event_id, kind, source_id, patient_id, department_code, "
        "occurred_at, event_date, detail, confirmed_by_batch_at, batch_file)\n"
        f"SELECT uuid_generate_v5({ns}::uuid, '{kind}:' || {src}::text), '{kind}', {src}, "
        f"s.patient_id::uuid, {dept_sql}, {at}, ({at} AT TIME ZONE 'UTC')::date, "
        f"{_detail(spec, source, time_col)}, now(), %(file)s\n"
        f"FROM {STAGE} s WHERE {ok_predicate(cks, fast)} AND {extra_where}{since}\n"
        "ON CONFLICT (event_id) DO UPDATE SET kind = EXCLUDED.kind, "
        "source_id = EXCLUDED.source_id, patient_id = EXCLUDED.patient_id, "
        "department_code = EXCLUDED.department_code, occurred_at = EXCLUDED.occurred_at, "
        "event_date = EXCLUDED.event_date, detail = EXCLUDED.detail, "
        "confirmed_by_batch_at = EXCLUDED.confirmed_by_batch_at, "
        "batch_file = EXCLUDED.batch_file"
    )
