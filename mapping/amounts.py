"""Reading a fine out of Chinese penalty text (罚款人民币贰仟元, 罚款1.5万元, 处5000元罚款 ...).

Amounts are Arabic (``5000``, ``5,000.00``, ``1.5万``) or Chinese numerals, capital
(壹贰叁 ... 拾佰仟万亿) or common (一二三 ... 十百千万, 零, 两), followed by 元 (or 圆), with
optional 角/分 after Chinese ones. When a text names several amounts, the one tied to 罚款
(right after it, or right before it as in ``5000元罚款``) wins; otherwise the first amount that is
not tied to a confiscation (没收违法所得 ...) is taken.
"""

from __future__ import annotations

import re
import unicodedata
from decimal import Decimal
from functools import lru_cache

_CN_DIGITS = {
    "零": 0, "〇": 0, "一": 1, "壹": 1, "二": 2, "贰": 2, "貳": 2, "两": 2, "兩": 2, "三": 3, "叁": 3,
    "參": 3, "四": 4, "肆": 4, "五": 5, "伍": 5, "六": 6, "陆": 6, "陸": 6, "七": 7, "柒": 7, "八": 8,
    "捌": 8, "九": 9, "玖": 9,
}
_CN_SMALL_UNITS = {"十": 10, "拾": 10, "百": 100, "佰": 100, "千": 1000, "仟": 1000}
_CN_LARGE_UNITS = {"万": 10**4, "萬": 10**4, "亿": 10**8, "億": 10**8}
_ARABIC_MULTIPLIERS = {"": 1, "百": 100, "佰": 100, "千": 1000, "仟": 1000, "万": 10**4, "萬": 10**4}


@lru_cache(maxsize=1)
def _patterns() -> tuple[re.Pattern[str], re.Pattern[str], re.Pattern[str], re.Pattern[str]]:
    digits = "".join(_CN_DIGITS)
    numerals = digits + "".join(_CN_SMALL_UNITS) + "".join(_CN_LARGE_UNITS)
    amount = re.compile(
        r"(?P<arabic>[0-9]+(?:,[0-9]{3})*(?:\.[0-9]+)?)(?P<mult>[百佰千仟万萬]?)[元圆]"
        rf"|(?P<chinese>[{numerals}]+)[元圆](?:(?P<jiao>[{digits}])角)?(?:(?P<fen>[{digits}])分)?"
    )
    fine_before = re.compile(r"(?:罚款|罚金)(?:金额|数额)?(?:为|计|共计|合计)?[:]?(?:人民币)?[¥￥]?$")
    fine_after = re.compile(r"整?的?(?:罚款|罚金)")
    confiscation_before = re.compile(r"(?:没收|违法所得|货值|价款|收入|经营额)[^,。;]{0,12}$")
    return amount, fine_before, fine_after, confiscation_before


def find_fine_amount(text: str) -> Decimal | None:
    """The fine named in ``text``, in yuan (unrounded), or None when it names no amount."""
    amount_re, fine_before, fine_after, confiscation_before = _patterns()
    compact = "".join(unicodedata.normalize("NFKC", text).split())
    fallback: Decimal | None = None
    for match in amount_re.finditer(compact):
        value = _match_value(match)
        if value is None:
            continue
        before = compact[max(0, match.start() - 16):match.start()]
        if fine_before.search(before) or fine_after.match(compact, match.end()):
            return value
        if fallback is None and not confiscation_before.search(before):
            fallback = value
    return fallback


def _match_value(match: re.Match[str]) -> Decimal | None:
    arabic = match.group("arabic")
    if arabic is not None:
        return Decimal(arabic.replace(",", "")) * _ARABIC_MULTIPLIERS[match.group("mult")]
    yuan = chinese_numeral_value(match.group("chinese"))
    if yuan is None:
        return None
    jiao, fen = match.group("jiao"), match.group("fen")
    cents = (_CN_DIGITS[jiao] * 10 if jiao else 0) + (_CN_DIGITS[fen] if fen else 0)
    return Decimal(yuan) + Decimal(cents).scaleb(-2)


def chinese_numeral_value(text: str) -> int | None:
    """Value of a Chinese numeral (壹万贰仟伍佰, 两千零五十, 十五); None when it has no digit or unit."""
    total = section = number = 0
    seen = False
    for char in text:
        if char in _CN_DIGITS:
            number, seen = _CN_DIGITS[char], True
        elif char in _CN_SMALL_UNITS:
            section += (number or 1) * _CN_SMALL_UNITS[char]   # 十五 = 15: a bare unit counts one
            number, seen = 0, True
        elif seen:   # a large unit scales everything below it
            unit = _CN_LARGE_UNITS[char]
            if unit > 10**4:
                total = (total + section + number) * unit
            else:
                total += (section + number) * unit
            section = number = 0
        else:
            return None
    return total + section + number if seen else None
