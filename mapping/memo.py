"""A bounded memo of one field's pure ``then:`` chain, keyed by the source text.

Dates, codes, flags and the identifiers of public bodies repeat across the records of a source, and
their conversions are pure (``CompiledTransform.pure``): the chain's result depends on the source
text alone. The engine then keeps, per field, the results of texts converted without a finding
(a text that failed is converted again, so its finding is reported every time). Fields holding
personal information are never memoised (the compiler does not ask for it), and each memo is
bounded: it is emptied when full, and a field whose values do not repeat (timestamps, amounts)
stops memoising for a while, so it costs a counter instead of a dict insert per record.
"""

from __future__ import annotations

from typing import Any

from mapping.map_context import Evaluator, MapContext, clean
from mapping.paths import Getter

MEMO_MAX_ENTRIES = 2048
"""Per field; small enough to stay in cache, large enough for a year of dates or a code table."""
_POOR_HITS = MEMO_MAX_ENTRIES // 8     # fewer hits than this while filling: values do not repeat
_BYPASS_CALLS = 16 * MEMO_MAX_ENTRIES  # then convert without memoising for this many calls
_IMMUTABLE = frozenset({str, bool, int, float, type(None)})

Chain = Any  # Callable[[Any, MapContext], Any]; Any keeps the hot closure free of typing overhead


class Memo:
    """One field's memo: its source key (None for a longer path), texts -> values, and hit count.

    The compiler reads a hit inline (``CompiledMapping`` looks ``cache`` up itself and counts the
    hit), saving a call per memoised field and record; it gives a miss to ``convert`` with ``chain``.
    """

    __slots__ = ("bypass", "cache", "chain", "hits", "key")

    def __init__(self, key: str | None, chain: Chain = None) -> None:
        self.key = key
        self.chain = chain  # what it converts with (``memoised_with_memo``'s, for misses read inline)
        self.cache: dict[str, Any] = {}
        self.hits = 0
        self.bypass = 0  # calls left to convert without memoising (a field whose values do not repeat)

    def convert(self, text: str, value: Any, chain: Chain, ctx: MapContext) -> Any:
        """A miss: ``chain(value)``, kept under ``text`` when it raised no finding, read nothing of
        the record and the memo is not bypassed; a full memo is emptied (and bypassed for a while
        if it was poorly hit)."""
        if self.bypass:
            self.bypass -= 1
            return chain(value, ctx)
        findings = ctx.findings
        before = len(findings)
        ctx.read_record = False
        result = chain(value, ctx)
        if len(findings) == before and not ctx.read_record and _storable(result):
            cache = self.cache
            if len(cache) >= MEMO_MAX_ENTRIES:
                if self.hits < _POOR_HITS:
                    self.bypass = _BYPASS_CALLS
                cache.clear()
                self.hits = 0
            cache[text] = result.copy() if type(result) is list else result
        return result


MISS: Any = object()
"""What ``Memo.cache.get(text, MISS)`` returns for a text it does not hold."""


def memoised(get: Getter, key: str | None, chain: Chain) -> Evaluator:
    """``chain(clean(get(src)))`` with a memo of text sources; ``key``: the path is this one key."""
    return memoised_with_memo(get, key, chain)[0]


def memoised_with_memo(get: Getter, key: str | None, chain: Chain) -> tuple[Evaluator, Memo]:
    """``memoised``, and the memo it keeps, for callers that read hits inline."""
    memo = Memo(key, chain)
    cache = memo.cache

    def evaluate(src: Any, ctx: MapContext) -> Any:
        raw = get(src) if key is None else src.get(key) if type(src) is dict else None
        if type(raw) is not str:
            return chain(clean(raw) if type(raw) is list else raw, ctx)
        found = cache.get(raw, MISS)
        if found is not MISS:
            memo.hits += 1
            return found.copy() if type(found) is list else found
        return memo.convert(raw, raw.strip() or None, chain, ctx)

    return evaluate, memo


def memoised_value(source: Evaluator, chain: Chain) -> Evaluator:
    """``chain(source(src, ctx))`` with a memo of the texts ``source`` gives, for sources that are not
    one path (meta, ``first``, ``ref``, ``concat``...). Meta values are the same for every record
    of an envelope (its file's time, the receipt time, the provider), and registry cells repeat per
    device, so their conversions are mostly hits; the bounds and the bypass are ``Memo.convert``'s."""
    memo = Memo(None)
    cache = memo.cache

    def evaluate(src: Any, ctx: MapContext) -> Any:
        value = source(src, ctx)
        if type(value) is not str:
            return chain(value, ctx)
        found = cache.get(value, MISS)
        if found is not MISS:
            memo.hits += 1
            return found.copy() if type(found) is list else found
        return memo.convert(value, value, chain, ctx)

    return evaluate


def _storable(value: Any) -> bool:
    if type(value) in _IMMUTABLE:
        return True
    return type(value) is list and all(type(v) is str for v in value)
