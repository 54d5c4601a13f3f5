"""Vectorized building blocks: fixed-width strings and deterministic UUIDs from numpy arrays.

Building millions of Python strings one by one is what makes naive generators slow; here strings
are assembled as ``uint8`` matrices and handed to Arrow as one buffer (no per-row objects).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import polars as pl
import pyarrow as pa

U8 = npt.NDArray[np.uint8]
I64 = npt.NDArray[np.int64]

_HEX = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
_ZERO = ord("0")


def _hex_quads() -> npt.NDArray[np.uint32]:
    """Two bytes (as a native uint16) -> their four hex characters (one uint32, text order)."""
    pairs = np.stack([_HEX[np.arange(256) >> 4], _HEX[np.arange(256) & 15]], axis=1)
    two = np.arange(65536, dtype=np.uint16).view(np.uint8).reshape(-1, 2)
    quads = np.concatenate([pairs[two[:, 0]], pairs[two[:, 1]]], axis=1)
    return np.ascontiguousarray(quads).view(np.uint32).reshape(-1)


# One lookup per two bytes halves the gathers versus a per-byte table.
_HEX_QUADS = _hex_quads()


def ascii_matrix_to_series(name: str, chars: U8) -> pl.Series:
    """An ``(n, width)`` ASCII matrix as a polars string column, without per-row Python work."""
    n, width = chars.shape
    data = np.ascontiguousarray(chars).reshape(-1)
    offsets = np.arange(0, (n + 1) * width, width, dtype=np.int64)
    arr = pa.LargeStringArray.from_buffers(n, pa.py_buffer(offsets), pa.py_buffer(data))
    return pl.Series(name, pl.from_arrow(arr)).cast(pl.String)


def digits(values: npt.NDArray[np.integer], width: int) -> U8:
    """Zero-padded decimal digits of non-negative integers (< 2**31) as an ASCII matrix."""
    v = values.astype(np.int32, copy=True)
    # Fill one contiguous row per digit position, then transpose once: strided per-column
    # writes into an (n, width) matrix are several times slower.
    planes = np.empty((width, v.shape[0]), dtype=np.uint8)
    for pos in range(width - 1, -1, -1):
        v, rem = np.divmod(v, 10)
        np.add(rem, _ZERO, out=planes[pos], casting="unsafe")
    return np.ascontiguousarray(planes.T)


def random_uuids(rng: np.random.Generator, n: int) -> U8:
    """RFC 4122 version-4 layout UUIDs drawn from ``rng`` (deterministic, unlike ``uuid4``)."""
    raw = np.frombuffer(rng.bytes(16 * n), dtype=np.uint8).reshape(n, 16).copy()
    raw[:, 6] = (raw[:, 6] & 0x0F) | 0x40
    raw[:, 8] = (raw[:, 8] & 0x3F) | 0x80
    hexchars = _HEX_QUADS[raw.view(np.uint16)].view(np.uint8).reshape(n, 32)
    out = np.full((n, 36), ord("-"), dtype=np.uint8)
    for src, dst in ((slice(0, 8), slice(0, 8)), (slice(8, 12), slice(9, 13))):
        out[:, dst] = hexchars[:, src]
    out[:, 14:18] = hexchars[:, 12:16]
    out[:, 19:23] = hexchars[:, 16:20]
    out[:, 24:36] = hexchars[:, 20:32]
    return out


def uuid_series(name: str, rng: np.random.Generator, n: int) -> pl.Series:
    """``n`` deterministic UUID strings as a polars column."""
    return ascii_matrix_to_series(name, random_uuids(rng, n))


def pick(values: tuple[str, ...] | list[str], idx: npt.NDArray[np.integer], name: str) -> pl.Series:
    """``values[idx]`` as a polars column (one gather, no Python loop)."""
    return pl.Series(name, list(values), dtype=pl.String).gather(pl.Series(idx.astype(np.int64)))


def child_rng(seed: int, *keys: int) -> np.random.Generator:
    """An independent, reproducible stream for a (seed, purpose, day...) key.

    Per-purpose streams mean adding draws in one place never shifts the numbers drawn elsewhere.
    """
    return np.random.default_rng([seed, *keys])
