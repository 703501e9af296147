"""Identifier checks of the unified standard 1.0 (USCC, RIC, org code, division code, ...).

The rules are those of ``identifiers.md`` and its reference implementation
``tools/make_examples.py``; this is a port for speed. Validators do not normalise: a value that
is not canonical (ASCII letters upper-cased, no whitespace, NFKC-stable) is a format error.
Connectors and the ``identifier`` transform call :func:`normalise_identifier` first.

Finding details never repeat the value: RIC numbers are personal information.
python-stdnum is used only for the division table; its USCC, RIC and MOD 11,10 checks differ
from the standard (letter department codes, historic region codes, full-width digits).
"""

from __future__ import annotations

import time
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from functools import lru_cache
from operator import mul
from typing import Literal

from gateway.errors import ConfigError
from mapping.divisions import PROVINCE_CODES, is_known_division

FORMAT = "IDENTIFIER_FORMAT"
CHECKSUM = "IDENTIFIER_CHECKSUM"
UNKNOWN = "IDENTIFIER_UNKNOWN"
LEGACY = "IDENTIFIER_LEGACY"


@dataclass(frozen=True, slots=True)
class IdFinding:
    code: str
    severity: Literal["error", "warning"]
    detail_en: str
    detail_zh: str


IDENTIFIER_TYPES: frozenset[str] = frozenset({
    "uscc", "ric", "org_code", "admin_division", "business_reg_no",
    "supervision_item_code", "check_impl_code", "gbt28181_id",
})
USCC_PLACEHOLDER = "00000000000000000X"

_SHANGHAI_OFFSET_S = 8 * 3600
_EPOCH_DAY = date(1970, 1, 1)
_INVISIBLE = str.maketrans("", "", "\u200b\ufeff")


def _error(code: str, en: str, zh: str) -> IdFinding:
    return IdFinding(code, "error", en, zh)


def _warning(code: str, en: str, zh: str) -> IdFinding:
    return IdFinding(code, "warning", en, zh)


def normalise_identifier(value: str) -> str:
    """Connector-side canonical form: NFKC, no whitespace (U+3000 and zero-width too), upper case.

    Type-specific steps such as dropping an org code's hyphen are the caller's.
    """
    if value.isascii():
        return "".join(value.split()).upper()
    text = unicodedata.normalize("NFKC", value).translate(_INVISIBLE)
    return "".join(text.split()).upper()


def _canonical_problem(value: str) -> IdFinding | None:
    if value.isascii():
        if value.isprintable() and " " not in value:
            return None
        return _error(FORMAT, "contains whitespace or control characters", "含有空白或控制字符")
    if any(c.isspace() for c in value) or "\u200b" in value or "\ufeff" in value:
        return _error(FORMAT, "contains whitespace", "含有空白字符")
    if unicodedata.normalize("NFKC", value) != value:
        return _error(FORMAT, "contains full-width or other non-canonical characters (apply NFKC)",
                      "含有全角或其他非规范字符（应先做NFKC规范化）")
    return None


def _precheck(value: object) -> IdFinding | None:
    if not isinstance(value, str) or value == "":
        return _error(FORMAT, "empty or not a string", "为空或不是字符串")
    return _canonical_problem(value)


def _ascii_digits(value: str) -> bool:
    return value.isascii() and value.isdigit()


def _length_error(actual: int, expected: str) -> IdFinding:
    return _error(FORMAT, f"length {actual}, must be {expected}", f"长度为{actual}，应为{expected}")


def _check_char_error(what_en: str, what_zh: str, actual: str, expected: str) -> IdFinding:
    return _error(CHECKSUM, f"{what_en}check character is {actual}, expected {expected}",
                  f"{what_zh}校验位应为{expected}，实为{actual}")


# --- GB 11714 organisation code -------------------------------------------------------------

_ORG_VALUES = {c: int(c, 36) for c in "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"}   # A=10 ... Z=35
_ORG_WEIGHTS = (3, 7, 9, 10, 5, 8, 4, 2)
_ORG_CHECK = "0123456789X0"   # index r = 11 - (sum mod 11): 10 -> X, 11 -> 0


def org_check_char(body8: str) -> str:
    """GB 11714 check character of an 8-character body of [0-9A-Z]."""
    total = sum(map(mul, map(_ORG_VALUES.__getitem__, body8), _ORG_WEIGHTS))
    return _ORG_CHECK[11 - total % 11]


_ORG_BODY = frozenset(_ORG_VALUES)


def _check_org_code(value: str) -> list[IdFinding]:
    if (problem := _precheck(value)) is not None:
        return [problem]
    if "-" in value:
        return [_error(FORMAT, "canonical form has no hyphen (connectors remove it)",
                       "规范形式不含连字符（由接入端去除）")]
    if len(value) != 9:
        return [_length_error(len(value), "9")]
    if not _ORG_BODY.issuperset(value[:8]) or value[8] not in "0123456789X":
        return [_error(FORMAT, "must be 8 of [0-9A-Z] followed by [0-9X]",
                       "应为8位数字或大写字母加1位数字或X")]
    if value[:8] == "00000000":
        return [_error(FORMAT, "all-zero body is a placeholder (gateway rule)", "全零本体码为占位符")]
    expected = org_check_char(value[:8])
    if value[8] != expected:
        return [_check_char_error("", "", value[8], expected)]
    return []


# --- GB 32100 unified social credit code ----------------------------------------------------

_USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"   # no I O S V Z
_USCC_VALUES = {c: i for i, c in enumerate(_USCC_ALPHABET)}
_USCC_CHARS = frozenset(_USCC_ALPHABET)
_USCC_WEIGHTS = tuple(pow(3, i, 31) for i in range(17))
_USCC_DEPARTMENTS = frozenset("123456789ANY")
_USCC_BASE34_DIGITS = bytes.maketrans(_USCC_ALPHABET.encode(), b"0123456789ABCDEFGHIJKLMNOPQRSTU")


def uscc_check_char(first17: str) -> str:
    """GB 32100 MOD 31 check character of the first 17 characters."""
    total = sum(map(mul, map(_USCC_VALUES.__getitem__, first17), _USCC_WEIGHTS))
    return _USCC_ALPHABET[-total % 31]


def _check_uscc(value: str, exceptions: frozenset[str]) -> list[IdFinding]:
    if len(value) == 18 and _USCC_CHARS.issuperset(value) and value != USCC_PLACEHOLDER:
        return _uscc_structure(value, exceptions)   # fast path: canonical by construction
    if (problem := _precheck(value)) is not None:
        return [problem]
    if value == USCC_PLACEHOLDER:
        return [_error(CHECKSUM, "placeholder 00000000000000000X; accepted only where rule CRD-001 allows it",
                       "00000000000000000X为占位符，仅在规则CRD-001允许时接受")]
    if len(value) != 18:
        return [_length_error(len(value), "18")]
    if value != value.upper():
        return [_error(FORMAT, "lower-case letters (canonical form is upper case)",
                       "含小写字母（规范形式为大写）")]
    bad = "".join(sorted({c for c in value if c not in _USCC_CHARS}))
    return [_error(FORMAT, f"characters not in the GB 32100 alphabet: {bad}",
                   f"含GB 32100字符集以外的字符：{bad}")]


def _uscc_structure(value: str, exceptions: frozenset[str]) -> list[IdFinding]:
    if value[0] not in _USCC_DEPARTMENTS:
        return [_error(FORMAT, f"first character {value[0]} is not a registration-department code",
                       f"第1位{value[0]}不是登记管理部门代码")]
    if not value[2:8].isdigit():
        return [_error(FORMAT, "positions 3-8 (registration region) must be digits",
                       "第3-8位（登记管理机关行政区划码）应为数字")]
    findings: list[IdFinding] = []
    # The characters are checked (fast path above), so int() can weigh them in C. GB 11714's
    # weights are 2**(8-i) mod 11, twice base 35's place values (35 = 2 mod 11); base 35 reads the
    # USCC alphabet (no Z) with GB 11714's values.
    embedded = _ORG_CHECK[11 - 2 * int(value[8:16], 35) % 11]
    if value[16] != embedded:
        findings.append(_check_char_error("embedded org code (positions 9-17): ",
                                          "内嵌组织机构代码（第9-17位）", value[16], embedded))
    # GB 32100's weights 3**i mod 31 are the place values of base 34 (34 = 3 mod 31) read from the
    # right: reverse the 17 characters and write each as the base-34 digit of its GB 32100 value.
    reversed_digits = value.encode("ascii")[16::-1].translate(_USCC_BASE34_DIGITS)
    expected = _USCC_ALPHABET[-int(reversed_digits, 34) % 31]
    if value[17] != expected:
        if value in exceptions:
            findings.append(_warning(CHECKSUM,
                                     f"check character is {value[17]}, expected {expected}; "
                                     "accepted from the exception list",
                                     f"校验位应为{expected}，实为{value[17]}；列入例外清单，予以接受"))
        else:
            findings.append(_check_char_error("", "", value[17], expected))
    return findings


# --- GB 11643 resident identity card number --------------------------------------------------

_RIC_WEIGHTS = tuple(pow(2, 17 - i, 11) for i in range(17))
_DIGIT_VALUES = {str(d): d for d in range(10)}
_RIC_CHECK = "10X98765432"
_RIC_MIN_BIRTH = date(1800, 1, 1)
_RESIDENCE_PERMIT_PREFIXES = frozenset({"810000", "820000", "830000"})


def ric_check_char(first17: str) -> str:
    """ISO 7064 MOD 11-2 check character of the first 17 digits."""
    return _RIC_CHECK[sum(map(mul, map(_DIGIT_VALUES.__getitem__, first17), _RIC_WEIGHTS)) % 11]


def ric15_to_18(value15: str) -> str:
    """18-digit form of a first-generation number, for comparison only (never stored)."""
    first17 = value15[:6] + "19" + value15[6:]
    return first17 + ric_check_char(first17)


def _date_or_none(yyyymmdd: str) -> date | None:
    """The date of 8 ASCII digits (callers check them), None if it is not a calendar date."""
    try:  # the ISO basic form YYYYMMDD: all digits, so no other ISO form can match
        return date.fromisoformat(yyyymmdd)
    except ValueError:
        return None


def _check_ric15(value: str) -> list[IdFinding]:
    if not _ascii_digits(value):
        return [_error(FORMAT, "15-character value must be 15 digits", "15位号码应全为数字")]
    if value[:2] not in PROVINCE_CODES:
        return [_error(FORMAT, "positions 1-2 are not a province-level code", "第1-2位不是省级行政区划代码")]
    if _date_or_none("19" + value[6:12]) is None:
        return [_error(FORMAT, "birth date (positions 7-12, century 19) is not a calendar date",
                       "出生日期（第7-12位，19世纪后）不是有效日期")]
    return [_warning(LEGACY, "15-digit first-generation number (compare via ric15_to_18)",
                     "15位第一代身份证号码，未作校验")]


def _check_ric(value: str, today: date | None) -> list[IdFinding]:
    if (problem := _precheck(value)) is not None:
        return [problem]
    if len(value) == 15:
        return _check_ric15(value)
    if len(value) != 18:
        return [_length_error(len(value), "18 (or 15 for legacy)")]
    if value[17] == "x":
        return [_error(FORMAT, "lower-case x (canonical form is upper-case X)", "校验位x应为大写X")]
    if not (_ascii_digits(value[:17]) and value[17] in "0123456789X"):
        return [_error(FORMAT, "must be 17 digits followed by a digit or X", "应为17位数字加1位数字或X")]
    permit = value[:6] in _RESIDENCE_PERMIT_PREFIXES   # 港澳台居民居住证
    if value[:2] not in PROVINCE_CODES and not permit:
        return [_error(FORMAT, "positions 1-2 are not a province-level code", "第1-2位不是省级行政区划代码")]
    findings: list[IdFinding] = []
    # The first 17 are ASCII digits (checked above). Weight 2**(17-i) mod 11 is twice base 13's
    # place value (13 = 2 mod 11), so int(..., 13) weighs them all in C.
    if value[17] != _RIC_CHECK[2 * int(value[:17], 13) % 11]:
        findings.append(_error(CHECKSUM, "check character does not match (MOD 11-2)",
                               "校验位不正确（MOD 11-2）"))
    born = _date_or_none(value[6:14])
    if born is None:
        findings.append(_error(FORMAT, "birth date (positions 7-14) is not a calendar date",
                               "出生日期（第7-14位）不是有效日期"))
    elif not _RIC_MIN_BIRTH <= born <= (today or _shanghai_today()):
        findings.append(_error(FORMAT, "birth date outside 1800-01-01..validation day",
                               "出生日期不在1800-01-01至校验当日之间"))
    if not findings and not permit and not is_known_division(value[:6]):
        findings.append(_warning(UNKNOWN, "address code (positions 1-6) not in the division table",
                                 "地址码（第1-6位）不在行政区划代码表中"))
    return findings


def _shanghai_today() -> date:
    """``datetime.now(Asia/Shanghai).date()`` from the clock's day number (UTC+8, no DST)."""
    return _day(int((time.time() + _SHANGHAI_OFFSET_S) // 86_400))


@lru_cache(maxsize=4)
def _day(days_since_epoch: int) -> date:
    return _EPOCH_DAY + timedelta(days=days_since_epoch)


# --- GB/T 2260 division code -----------------------------------------------------------------

def _check_admin_division(value: str, allow_township: bool) -> list[IdFinding]:
    if (problem := _precheck(value)) is not None:
        return [problem]
    if not (_ascii_digits(value) and (len(value) == 6 or (allow_township and len(value) == 9))):
        if allow_township:
            return [_error(FORMAT, "must be 6 digits (or 9 for a township code)",
                           "应为6位数字（乡镇级为9位）")]
        return [_error(FORMAT, "must be exactly 6 digits", "应为6位数字")]
    if value[:2] not in PROVINCE_CODES:
        return [_error(FORMAT, f"{value[:2]} is not a province-level code",
                       f"{value[:2]}不是省级行政区划代码")]
    if value[2:4] == "00" and value[4:6] != "00":
        return [_error(FORMAT, "prefecture part is 00 but county part is not 00", "地市位为00而县级位不为00")]
    if value[6:] == "000":
        return [_error(FORMAT, "township part 000 is not a township", "乡镇位000不是乡镇代码")]
    if not is_known_division(value[:6]):
        return [_warning(UNKNOWN, f"{value[:6]} is not in the division table (any period)",
                         f"{value[:6]}不在行政区划代码表中")]
    return []


# --- GS15-2006 business registration number --------------------------------------------------

def mod_11_10_check_digit(digits: str) -> str:
    """ISO 7064 MOD 11,10 check digit of ASCII ``digits``."""
    p = 10
    for c in digits:
        p = (((p + int(c)) % 10 or 10) * 2) % 11
    return str((11 - p) % 10)


def _check_business_reg_no(value: str) -> list[IdFinding]:
    if (problem := _precheck(value)) is not None:
        return [problem]
    if len(value) != 15:
        return [_warning(LEGACY, "not a 15-digit GS15-2006 number; older formats are not checked",
                         "不是15位工商注册号，旧格式不作校验")]
    if not _ascii_digits(value):
        return [_error(FORMAT, "a 15-character registration number must be 15 ASCII digits",
                       "15位注册号应全为数字")]
    expected = mod_11_10_check_digit(value[:14])
    if value[14] != expected:
        return [_check_char_error("MOD 11,10 ", "MOD 11,10 ", value[14], expected)]
    return []


# --- 互联网+监管 codes and GB/T 28181 ids ------------------------------------------------------

def _digits_checker(length: int) -> Callable[[str], list[IdFinding]]:
    def check(value: str) -> list[IdFinding]:
        if isinstance(value, str) and len(value) == length and _ascii_digits(value):
            return []
        return [_error(FORMAT, f"must be exactly {length} ASCII digits", f"应为{length}位数字")]
    return check


_check_supervision_item_code = _digits_checker(14)
_check_gbt28181_id = _digits_checker(20)
CHECK_IMPL_MAX_LENGTH = 800


def _check_check_impl_code(value: str, exceptions: frozenset[str]) -> list[IdFinding]:
    if (problem := _precheck(value)) is not None:
        return [problem]
    if not value.isascii() and any(unicodedata.category(c)[0] == "C" for c in value):
        return [_error(FORMAT, "contains control characters", "含有控制字符")]
    if not 19 <= len(value) <= CHECK_IMPL_MAX_LENGTH:
        return [_length_error(len(value), f"19..{CHECK_IMPL_MAX_LENGTH}")]
    findings = [IdFinding(f.code, f.severity, "positions 1-18 (implementing body USCC): " + f.detail_en,
                          "第1-18位（实施机构统一社会信用代码）：" + f.detail_zh)
                for f in _check_uscc(value[:18], exceptions)]
    if value[18] not in "12345":
        findings.append(_error(FORMAT, "position 19 must be 1-5", "第19位应为1-5"))
    return findings


def check_identifier(id_type: str, value: str, *, allow_township: bool = False,
                     uscc_exceptions: frozenset[str] = frozenset(),
                     today: date | None = None) -> list[IdFinding]:
    """Every finding of ``value`` as an identifier of ``id_type`` (empty list: valid).

    ``uscc_exceptions`` lists USCCs whose wrong check character is accepted with a warning;
    ``today`` bounds RIC birth dates (default: today in Asia/Shanghai).
    The USCC placeholder is rejected here; rule CRD-001 decides where it is allowed.
    """
    if id_type == "uscc":
        if not isinstance(value, str):
            return [_error(FORMAT, "empty or not a string", "为空或不是字符串")]
        return _check_uscc(value, uscc_exceptions)
    if id_type == "ric":
        return _check_ric(value, today)
    if id_type == "admin_division":
        return _check_admin_division(value, allow_township)
    if id_type == "check_impl_code":
        return _check_check_impl_code(value, uscc_exceptions)
    checker = _SIMPLE_CHECKERS.get(id_type)
    if checker is None:
        known = ", ".join(sorted(IDENTIFIER_TYPES))
        raise ConfigError(f"identifier type {id_type!r} is unknown; known: {known}")
    return checker(value)


_SIMPLE_CHECKERS: dict[str, Callable[[str], list[IdFinding]]] = {
    "org_code": _check_org_code,
    "business_reg_no": _check_business_reg_no,
    "supervision_item_code": _check_supervision_item_code,
    "gbt28181_id": _check_gbt28181_id,
}
