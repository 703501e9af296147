"""GB/T 2260 administrative division codes: province prefixes and the dated division table.

Until the official 民政部 list is loaded, the table is python-stdnum's ``cn/loc`` database
(taken from Wikipedia lists, with validity years per code). Standard 1.0 accepts a code that
appears in it in **any** period, so the table is reduced to a set of known 6-digit codes,
built once on first use.
"""

from __future__ import annotations

from functools import lru_cache

PROVINCE_CODES: frozenset[str] = frozenset({
    "11", "12", "13", "14", "15", "21", "22", "23", "31", "32", "33", "34", "35", "36", "37",
    "41", "42", "43", "44", "45", "46", "50", "51", "52", "53", "54", "61", "62", "63", "64", "65",
    "71", "81", "82",
})
"""Positions 1-2 of a GB/T 2260 code (identifiers.md §4)."""


@lru_cache(maxsize=1)
def known_division_codes() -> frozenset[str]:
    """Every 6-digit code of the division table, whatever its validity period."""
    from stdnum import numdb  # imported here: reading the table is the only work it does

    codes: set[str] = set()
    for _length, low, high, _props, children in numdb.get("cn/loc").prefixes:
        if low != high:  # the file lists each province on its own line; ranges never occur
            continue
        for _clength, clow, chigh, cprops, _grandchildren in children:
            if "county" in cprops:
                codes.update(low + code for code in _expand(clow, chigh))
    return frozenset(codes)


def _expand(low: str, high: str) -> list[str]:
    if low == high:
        return [low]
    width = len(low)
    return [str(n).zfill(width) for n in range(int(low), int(high) + 1)]


def is_known_division(code6: str) -> bool:
    """True when ``code6`` is in the division table in any period (historic codes included)."""
    return code6 in known_division_codes()
