"""Text encodings of Chinese government payloads: resolve a declared or configured name, detect, decode.

Detection is deliberately simple and predictable rather than statistical: a UTF-8 BOM means UTF-8;
otherwise the text is UTF-8 if it decodes strictly as UTF-8, else GB18030 if it decodes strictly as
GB18030 (a superset of GBK and GB2312, so GBK files and GB2312-declared files holding GBK-only
characters both decode), else it is refused (``ENCODING``). Chinese text in GBK is practically never
valid UTF-8 (GBK lead bytes B0–F7 are UTF-8 continuation or 3-byte lead bytes followed by the wrong
kind of byte), so the first few non-ASCII bytes settle it.
"""

from __future__ import annotations

import codecs
import re

from gateway.errors import PayloadError

UTF8_BOM = codecs.BOM_UTF8
_GB_FAMILY = frozenset({"gb2312", "gbk", "gb18030", "cp936", "x-gbk", "euc-cn", "euc_cn", "936", "ms936"})
_UTF8 = frozenset({"utf-8", "utf-8-sig"})
# Only text codecs that plausibly carry these payloads; a lookup by an arbitrary declared name
# could otherwise reach a bytes-to-bytes codec such as zlib or base64.
_ALLOWED = frozenset({
    "utf-8", "utf-8-sig", "utf-16", "utf-16-le", "utf-16-be", "utf-32", "utf-32-le", "utf-32-be",
    "ascii", "latin-1", "iso8859-1", "cp1252", "big5", "big5hkscs", "gb18030",
})
# Bytes the decision between UTF-8 and GB18030 waits for, counted from the first non-ASCII byte.
_DECISION_BYTES = 64
_NON_ASCII = re.compile(rb"[\x80-\xff]")


def resolve_codec(name: str) -> str:
    """The Python codec to decode a declared or configured encoding name with.

    GB2312/GBK/GB18030 and their aliases all decode as GB18030; UTF-8 tolerates a BOM.
    Unknown or non-text encodings raise ``PayloadError("ENCODING")``.
    """
    lowered = name.strip().lower()
    if lowered in _GB_FAMILY:
        return "gb18030"
    try:
        canonical = codecs.lookup(lowered).name
    except LookupError as exc:
        raise PayloadError("ENCODING", f"unknown encoding {name!r}（不支持的字符编码 {name}）") from exc
    if canonical in _GB_FAMILY:
        return "gb18030"
    if canonical in _UTF8:
        return "utf-8-sig"
    if canonical not in _ALLOWED:
        raise PayloadError("ENCODING", f"unsupported encoding {name!r}（不支持的字符编码 {name}）")
    return canonical


def detect_encoding(head: bytes) -> str:
    """``utf-8-sig`` (BOM), ``utf-8`` or ``gb18030`` for the first bytes of a text; else ``ENCODING``.

    A head cut in the middle of a character is fine. An all-ASCII head says ``utf-8`` (ASCII is a
    subset of both); a streaming reader that may meet GBK later should pass ``encoding=None`` to
    ``iter_csv_rows`` instead, which decides at the first non-ASCII byte.
    """
    if head.startswith(UTF8_BOM):
        return "utf-8-sig"
    for candidate in ("utf-8", "gb18030"):
        try:
            codecs.getincrementaldecoder(candidate)("strict").decode(head, final=False)
        except UnicodeDecodeError:
            continue
        return candidate
    raise _not_text(0)


def _not_text(offset: int, encoding: str | None = None) -> PayloadError:
    what = f"not valid {encoding}" if encoding else "neither UTF-8 nor GBK/GB18030"
    return PayloadError(
        "ENCODING",
        f"the text is {what} near byte {offset}（字符编码错误：既非 UTF-8 也非 GBK，或与声明不符）",
        location=f"byte {offset}",
    )


class TextDecoder:
    """Incremental strict decoder, never splitting a multibyte character across chunks.

    With ``encoding=None`` it detects (module docstring): ASCII passes through undecided, and the
    choice is made once ``_DECISION_BYTES`` bytes from the first non-ASCII byte are seen (or at
    the end). NUL characters are refused: they mean binary data, not text.
    """

    def __init__(self, encoding: str | None = None) -> None:
        self.encoding: str | None = resolve_codec(encoding) if encoding else None
        self._decoder = codecs.getincrementaldecoder(self.encoding)("strict") if self.encoding else None
        self._pending = b""
        self._offset = 0

    def decode(self, chunk: bytes, *, final: bool = False) -> str:
        start = self._offset
        self._offset += len(chunk)
        if self._decoder is None:
            text = self._detect(chunk, final=final)
        else:
            text = self._strict(self._decoder, chunk, start, final=final)
        if "\x00" in text:
            raise PayloadError(
                "ENCODING", "the text contains NUL characters: binary data（内容含二进制数据）",
                location=f"byte {start}",
            )
        return text

    def _strict(self, decoder: codecs.IncrementalDecoder, chunk: bytes, base: int, *, final: bool) -> str:
        try:
            return decoder.decode(chunk, final=final)
        except UnicodeDecodeError as exc:
            raise _not_text(base + exc.start, self.encoding) from exc

    def _detect(self, chunk: bytes, *, final: bool) -> str:
        buffer = self._pending + chunk
        base = self._offset - len(buffer)
        if base == 0 and len(buffer) < len(UTF8_BOM) and UTF8_BOM.startswith(buffer) and buffer and not final:
            self._pending = buffer
            return ""
        if base == 0 and buffer.startswith(UTF8_BOM):
            return self._lock("utf-8-sig", buffer, base, final=final)
        found = _NON_ASCII.search(buffer)
        if found is None:
            self._pending = b""
            return buffer.decode("ascii")
        first = found.start()
        if len(buffer) - first < _DECISION_BYTES and not final:
            self._pending = buffer[first:]
            return buffer[:first].decode("ascii")
        for candidate in ("utf-8", "gb18030"):
            trial = codecs.getincrementaldecoder(candidate)("strict")
            try:
                text = trial.decode(buffer, final=final)
            except UnicodeDecodeError:
                continue
            self.encoding, self._decoder, self._pending = candidate, trial, b""
            return text
        raise _not_text(base + first)

    def _lock(self, encoding: str, buffer: bytes, base: int, *, final: bool) -> str:
        self.encoding = encoding
        self._decoder = codecs.getincrementaldecoder(encoding)("strict")
        self._pending = b""
        return self._strict(self._decoder, buffer, base, final=final)


def decode_text(data: bytes, encoding: str | None = None) -> str:
    """Decode a whole payload: with the configured encoding, or detected as ``TextDecoder`` does."""
    return TextDecoder(encoding).decode(data, final=True)
