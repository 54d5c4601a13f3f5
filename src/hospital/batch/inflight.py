"""What the client learns about a batch file while it sends it: its SHA-256, and whether every
timestamp value starts with a digit.

A file is read once; each block goes to the hash, to the check, and then to the server's COPY,
which works on one block while the client reads and checks the next (the check is vectorised:
about 1 ms per MB, far below the server's share of a COPY).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from hashlib import _Hash

COPY_CHUNK = 1 << 20  # bytes read, hashed, checked and sent at a time
NEWLINE, COMMA, DIGIT_0 = 10, 44, 48


class FieldStarts:
    """Checks the first byte of some columns of a CSV file, fed block by block.

    ``columns``: (position, required) of each column to check: a value there must start with
    an ASCII digit, or (when not required) be empty. The check is exact for the plain CSV a
    writer of this project makes (no quotes); whatever it cannot confirm, a quote anywhere or
    a line that is not ``ncols`` fields, makes :attr:`ok` false, and the caller takes a way
    that checks the values in SQL instead. The first line (the header) is not checked.
    """

    def __init__(self, ncols: int, columns: tuple[tuple[int, bool], ...]) -> None:
        self.ncols = ncols
        self.columns = columns
        self.ok = True
        self._carry = b""
        self._header = True

    def feed(self, block: bytes) -> bool:
        """Check the complete lines of ``block`` (a partial last line waits for the next)."""
        if not self.ok or not self.columns:
            return self.ok
        data = self._carry + block if self._carry else block
        end = data.rfind(b"\n") + 1
        self._carry = data[end:]
        start = 0
        if self._header and end:
            start = data.find(b"\n") + 1
            self._header = False
        if end > start:
            self.ok = self._lines(data, start, end)
        return self.ok

    def finish(self) -> bool:
        """True when every line was checked and passed (the file ends with a newline)."""
        if self._carry:
            self.ok = False
        return self.ok

    def _lines(self, data: bytes, start: int, end: int) -> bool:
        """Check the lines ``data[start:end]`` (whole lines, the last one ends at ``end``)."""
        if data.find(b'"', start, end) >= 0:
            return False  # a quoted field may hold commas and newlines: not for this check
        a = np.frombuffer(data, dtype=np.uint8, count=end - start, offset=start)
        nl = np.flatnonzero(a == NEWLINE)
        commas = np.flatnonzero(a == COMMA)
        per_line = self.ncols - 1
        if commas.size != nl.size * per_line:
            return False
        at = commas.reshape(nl.size, per_line)
        # Every line holds exactly its own ncols - 1 commas: each line's last comma comes
        # before its newline and its first comma after the previous line's newline.
        if per_line and (np.any(at[:, -1] > nl) or np.any(at[1:, 0] < nl[:-1])):
            return False
        line_starts = np.concatenate(([0], nl[:-1] + 1))
        for col, required in self.columns:
            starts = line_starts if col == 0 else at[:, col - 1] + 1
            first = a[starts]
            good = (first - DIGIT_0) < 10  # uint8 arithmetic: below '0' wraps around
            if not required:
                # An empty value: the next byte ends the field (a comma, or the newline).
                good |= first == (NEWLINE if col == self.ncols - 1 else COMMA)
            if not good.all():
                return False
        return True


def hashed_blocks(path: Path, digest: _Hash, chunk: int) -> Iterator[bytes]:
    """The file's blocks, each added to ``digest`` as it is read (one read, two uses)."""
    with path.open("rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
            yield block
