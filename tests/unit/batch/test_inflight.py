"""The client's in-flight check of timestamp columns (first byte a digit), against a reference."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from hospital.batch.inflight import FieldStarts

HEADER = b"a,b,c,d\n"
COLUMNS = ((0, True), (2, False), (3, True))  # first, middle optional, last


def scan(text: bytes, chunk: int, columns: tuple[tuple[int, bool], ...] = COLUMNS) -> bool:
    check = FieldStarts(4, columns)
    for i in range(0, len(text), chunk):
        check.feed(text[i : i + chunk])
    return check.finish()


def reference(text: bytes, columns: tuple[tuple[int, bool], ...] = COLUMNS) -> bool:
    """What the check must say: True only when it can confirm every value."""
    if not text.endswith(b"\n"):
        return False
    lines = text.split(b"\n")[1:-1]  # header and the empty tail after the last newline
    for line in lines:
        if b'"' in line:
            return False
        fields = line.split(b",")
        if len(fields) != 4:
            return False
        for col, required in columns:
            value = fields[col]
            if not (value[:1].isdigit() or (not required and value == b"")):
                return False
    return True


def test_clean_file_passes_in_any_block_size() -> None:
    body = b"2020-01-01,x,,2020-01-02\n1,y,3,4\n" * 50
    for chunk in (1, 2, 7, 64, 1 << 20):
        assert scan(HEADER + body, chunk)


def test_what_it_cannot_confirm() -> None:
    good = b"2020-01-01,x,,2020-01-02\n"
    assert not scan(HEADER + good + b"now,x,,2020-01-02\n", 5)  # a word the cast would take
    assert not scan(HEADER + good + b" 2020-01-01,x,,2020-01-02\n", 5)  # a leading space
    assert not scan(HEADER + good + b"2020-01-01,x,,\n", 5)  # a required value missing
    assert not scan(HEADER + good + b'2020-01-01,"x,y",,1\n', 5)  # a quoted field
    assert not scan(HEADER + good + b"2020-01-01,x,1\n", 5)  # a field short
    assert not scan(HEADER + good + b"2020-01-01,x,1,2,3\n", 5)  # a field too many
    assert not scan(HEADER + good.rstrip(b"\n"), 5)  # no final newline
    assert scan(b"not,checked,header,x\n" + good, 3)
    assert scan(HEADER + good, 3, columns=())  # nothing to check: anything goes


LINE = st.lists(st.sampled_from([b"1", b"2", b"a", b"", b" ", b",", b'"', b"now"]), max_size=7)


@given(st.lists(LINE.map(b"".join), max_size=20), st.integers(1, 40), st.booleans())
def test_agrees_with_a_line_by_line_reference(lines: list[bytes], chunk: int, tail: bool) -> None:
    text = HEADER + b"".join(line + b"\n" for line in lines) + (b"" if tail else b"1")
    assert scan(text, chunk) == reference(text)
