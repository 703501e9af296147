"""SM3 (GB/T 32905-2016): OpenSSL's through hashlib when the build has it, else a pure-Python port.

Some OpenSSL 3 builds leave SM3 out; the fallback keeps HMAC-SM3 working there without a third-party
package. It is slow (~1 MB/s) but signs one digest per batch, which is enough.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Callable
from functools import lru_cache
from typing import Protocol

_IV = (0x7380166F, 0x4914B2B9, 0x172442D7, 0xDA8A0600, 0xA96F30BC, 0x163138AA, 0xE38DEE4D, 0xB0FB0E4E)
_MASK = 0xFFFFFFFF


class HashObject(Protocol):
    digest_size: int
    block_size: int

    def update(self, data: bytes, /) -> None: ...
    def digest(self) -> bytes: ...
    def hexdigest(self) -> str: ...
    def copy(self) -> HashObject: ...


def _rol(x: int, n: int) -> int:
    n %= 32
    return ((x << n) | (x >> (32 - n))) & _MASK


_T = tuple(_rol(0x79CC4519 if j < 16 else 0x7A879D8A, j) for j in range(64))


def _p0(x: int) -> int:
    return x ^ _rol(x, 9) ^ _rol(x, 17)


def _p1(x: int) -> int:
    return x ^ _rol(x, 15) ^ _rol(x, 23)


def _compress(v: tuple[int, ...], block: bytes) -> tuple[int, ...]:
    w = list(struct.unpack(">16I", block))
    for j in range(16, 68):
        w.append(_p1(w[j - 16] ^ w[j - 9] ^ _rol(w[j - 3], 15)) ^ _rol(w[j - 13], 7) ^ w[j - 6])
    a, b, c, d, e, f, g, h = v
    for j in range(64):
        a12 = _rol(a, 12)
        ss1 = _rol((a12 + e + _T[j]) & _MASK, 7)
        ss2 = ss1 ^ a12
        if j < 16:
            ff, gg = a ^ b ^ c, e ^ f ^ g
        else:
            ff, gg = (a & b) | (a & c) | (b & c), (e & f) | (~e & g)
        tt1 = (ff + d + ss2 + (w[j] ^ w[j + 4])) & _MASK
        tt2 = (gg + h + ss1 + w[j]) & _MASK
        a, b, c, d = tt1, a, _rol(b, 9), c
        e, f, g, h = _p0(tt2), e, _rol(f, 19), g
    return tuple(x ^ y for x, y in zip((a, b, c, d, e, f, g, h), v, strict=True))


class PureSM3:
    """A hashlib-like SM3 object (what ``hmac`` needs: update, copy, digest, sizes)."""

    digest_size = 32
    block_size = 64
    name = "sm3"

    def __init__(self, data: bytes = b"") -> None:
        self._v: tuple[int, ...] = _IV
        self._pending = b""
        self._length = 0
        self.update(data)

    def update(self, data: bytes, /) -> None:
        self._length += len(data)
        buf = self._pending + bytes(data)
        full = len(buf) - len(buf) % 64
        for start in range(0, full, 64):
            self._v = _compress(self._v, buf[start:start + 64])
        self._pending = buf[full:]

    def copy(self) -> PureSM3:
        other = PureSM3()
        other._v, other._pending, other._length = self._v, self._pending, self._length
        return other

    def digest(self) -> bytes:
        tail = self._pending + b"\x80" + b"\x00" * ((55 - len(self._pending)) % 64)
        tail += struct.pack(">Q", self._length * 8)
        v = self._v
        for start in range(0, len(tail), 64):
            v = _compress(v, tail[start:start + 64])
        return struct.pack(">8I", *v)

    def hexdigest(self) -> str:
        return self.digest().hex()


def _openssl_sm3(data: bytes = b"") -> HashObject:
    return hashlib.new("sm3", data)  # type: ignore[return-value]


@lru_cache(maxsize=1)
def sm3_constructor() -> Callable[..., HashObject]:
    """The SM3 constructor to use: OpenSSL's when available, else ``PureSM3``."""
    if "sm3" in hashlib.algorithms_available:
        return _openssl_sm3
    return PureSM3
