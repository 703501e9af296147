"""Value conversions of mapping transforms: dates, datetimes, decimals, fines in text, booleans."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.errors import ConfigError
from mapping.amounts import chinese_numeral_value
from mapping.values import (
    DATE_FORMATS,
    DATETIME_FORMATS,
    ValueFormatError,
    amount_from_text,
    parse_date,
    parse_datetime,
    to_boolean,
    to_decimal,
    to_integer,
)

# --- dates -------------------------------------------------------------------------------------


@pytest.mark.parametrize(("value", "fmt", "expected"), [
    ("20250610", "yyyyMMdd", "2025-06-10"),
    (20250610, "yyyyMMdd", "2025-06-10"),
    ("2025-06-10", "yyyy-MM-dd", "2025-06-10"),
    ("2025/6/1", "yyyy/M/d", "2025-06-01"),
    ("2025/06/01", "yyyy/M/d", "2025-06-01"),
    ("2025/12/31", "yyyy/MM/dd", "2025-12-31"),
    ("2025年6月1日", "yyyy年M月d日", "2025-06-01"),
    ("2025年06月10日", "yyyy年M月d日", "2025-06-10"),
    (45818, "excel", "2025-06-10"),
    (45818.75, "excel", "2025-06-10"),
    ("45818", "excel", "2025-06-10"),
    (59, "excel", "1900-02-28"),          # before the phantom 1900-02-29
    (61, "excel", "1900-03-01"),
    ("2025-06-10", "iso", "2025-06-10"),
    ("2025-06-10T10:00:00", "iso", "2025-06-10"),
    ("2025-06-10T23:30:00Z", "iso", "2025-06-11"),   # the Asia/Shanghai calendar date
    ("  20250610 ", "yyyyMMdd", "2025-06-10"),
])
def test_parse_date_formats(value: str | int | float, fmt: str, expected: str) -> None:
    assert parse_date(value, [fmt]) == expected


@pytest.mark.parametrize(("value", "fmt"), [
    ("0001-01-01", "yyyy-MM-dd"), ("1900-01-01", "yyyy-MM-dd"), ("1899-12-30", "yyyy-MM-dd"),
    ("19000101", "yyyyMMdd"), (0, "excel"), (1, "excel"),
])
def test_sentinel_dates_are_absent(value: str | int, fmt: str) -> None:
    assert parse_date(value, [fmt]) is None


@pytest.mark.parametrize(("value", "fmt"), [
    ("长期", "yyyy-MM-dd"), ("长期有效", "yyyyMMdd"), ("9999-12-31", "yyyy-MM-dd"),
    ("99991231", "yyyyMMdd"), ("9999/1/1", "yyyy/M/d"),
])
def test_long_term_becomes_2099_12_31(value: str, fmt: str) -> None:
    assert parse_date(value, [fmt]) == "2099-12-31"


def test_first_matching_format_wins() -> None:
    assert parse_date("2025/6/1", ["yyyyMMdd", "yyyy/M/d"]) == "2025-06-01"
    assert parse_date("20250601", ["yyyy/M/d", "yyyyMMdd"]) == "2025-06-01"
    assert parse_date(20250601, ["excel", "yyyyMMdd"]) == "2025-06-01"   # too large for a serial


@pytest.mark.parametrize(("value", "fmt"), [
    ("2025/6/31", "yyyy/M/d"), ("20250230", "yyyyMMdd"), ("2025-13-01", "yyyy-MM-dd"),
    ("2025年2月29日", "yyyy年M月d日"), (60, "excel"),
])
def test_invalid_calendar_dates_raise(value: str | int, fmt: str) -> None:
    with pytest.raises(ValueFormatError, match=r"1900-02-29|calendar date"):
        parse_date(value, [fmt])


@pytest.mark.parametrize(("value", "fmt"), [
    ("２０２５０６１０", "yyyyMMdd"), ("2025_06_10", "yyyyMMdd"), ("2025-6", "yyyy-MM-dd"),
    ("25/6/1", "yyyy/M/d"), ("2025/6/1/1", "yyyy/M/d"), ("2025年6月1", "yyyy年M月d日"),
    ("-5", "excel"), ("abc", "excel"), ("2025-6-1", "iso"), ("garbage", "iso"), (True, "yyyyMMdd"),
    ({"a": 1}, "yyyyMMdd"),
])
def test_unreadable_dates_raise_with_expected_format(value: Any, fmt: str) -> None:
    with pytest.raises(ValueFormatError) as caught:
        parse_date(value, [fmt])
    if isinstance(value, str):
        assert value not in str(caught.value)   # messages never repeat the value
    assert caught.value.message_zh


def test_unknown_date_format_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"dd\.MM\.yyyy"):
        parse_date("10.06.2025", ["dd.MM.yyyy"])


def test_format_name_sets() -> None:
    dates = {"yyyyMMdd", "yyyy-MM-dd", "yyyy/M/d", "yyyy/MM/dd", "yyyy年M月d日", "excel", "iso"}
    datetimes = {"yyyyMMddHHmmss", "yyyy-MM-dd HH:mm:ss", "yyyy/M/d H:mm:ss", "iso", "epoch_ms", "epoch_s"}
    assert dates == DATE_FORMATS
    assert datetimes == DATETIME_FORMATS


# --- datetimes ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("value", "fmt", "expected"), [
    ("20250610103000", "yyyyMMddHHmmss", "2025-06-10T10:30:00+08:00"),
    (20250610103000, "yyyyMMddHHmmss", "2025-06-10T10:30:00+08:00"),
    ("2025-06-10 10:30:00", "yyyy-MM-dd HH:mm:ss", "2025-06-10T10:30:00+08:00"),
    ("2025-06-10 10:30:00.0", "yyyy-MM-dd HH:mm:ss", "2025-06-10T10:30:00.000000+08:00"),
    ("2025/6/1 9:05:07", "yyyy/M/d H:mm:ss", "2025-06-01T09:05:07+08:00"),
    ("2025/06/01 19:05:07", "yyyy/M/d H:mm:ss", "2025-06-01T19:05:07+08:00"),
    ("2025-06-10T10:30:00+08:00", "iso", "2025-06-10T10:30:00+08:00"),
    ("2025-06-10T10:30:00", "iso", "2025-06-10T10:30:00+08:00"),
    ("2025-06-10 10:30:00", "iso", "2025-06-10T10:30:00+08:00"),
    ("2025-06-10T02:30:00Z", "iso", "2025-06-10T10:30:00+08:00"),
    ("2025-06-10T20:30:00.5-05:00", "iso", "2025-06-11T09:30:00.500000+08:00"),
    ("2025-06-10T10:30:00.000+08:00", "iso", "2025-06-10T10:30:00.000000+08:00"),
    (1749522600000, "epoch_ms", "2025-06-10T10:30:00+08:00"),
    ("1749522600123", "epoch_ms", "2025-06-10T10:30:00.123000+08:00"),
    (1749522600, "epoch_s", "2025-06-10T10:30:00+08:00"),
    (1749522600.25, "epoch_s", "2025-06-10T10:30:00.250000+08:00"),
])
def test_parse_datetime_formats(value: str | int | float, fmt: str, expected: str) -> None:
    assert parse_datetime(value, [fmt]) == expected


@pytest.mark.parametrize(("value", "fmt"), [
    ("2025-02-30 10:00:00", "yyyy-MM-dd HH:mm:ss"), ("20250610243000", "yyyyMMddHHmmss"),
    ("2025/6/31 9:00:00", "yyyy/M/d H:mm:ss"), ("2025-06-10 10:61:00", "yyyy-MM-dd HH:mm:ss"),
])
def test_invalid_datetimes_raise(value: str, fmt: str) -> None:
    with pytest.raises(ValueFormatError, match="real date and time"):
        parse_datetime(value, [fmt])


@pytest.mark.parametrize(("value", "fmt"), [
    ("2025-06-10", "iso"),                       # a date alone: the time would be invented
    ("2025-06-10T10:30:00", "yyyy-MM-dd HH:mm:ss"),
    ("2025-06-10 9:30:00", "yyyy-MM-dd HH:mm:ss"),
    ("2025/6/1 9:05", "yyyy/M/d H:mm:ss"),
    ("2025-06-10 10:30:00.1234567", "yyyy-MM-dd HH:mm:ss"),
    ("1e12", "epoch_ms"), ("NaN", "epoch_s"), ("1_000", "epoch_s"), ("99999999999999999999", "epoch_s"),
    ("２０２５-06-10T10:30:00", "iso"),
])
def test_unreadable_datetimes_raise(value: str, fmt: str) -> None:
    with pytest.raises(ValueFormatError, match="expected a datetime"):
        parse_datetime(value, [fmt])


# --- decimals ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("value", "options", "expected"), [
    ("5000", {}, "5000"),
    ("5000", {"places": 2}, "5000.00"),
    (5000, {"places": 2}, "5000.00"),
    ("1.5", {"unit": "万元"}, "15000.0"),
    ("1.5", {"unit": "万元", "places": 2}, "15000.00"),
    (0.35, {"unit": "万元", "places": 2}, "3500.00"),
    (0.1, {"places": 2}, "0.10"),
    (2.675, {"places": 2}, "2.68"),           # float 2.675 is 2.67499...; its repr is what was meant
    ("2.665", {"places": 2}, "2.67"),         # ROUND_HALF_UP, not banker's rounding
    ("-0.001", {"places": 2}, "0.00"),
    (1e20, {}, "100000000000000000000"),      # plain notation, no exponent
    ("12345678901234567890.125", {"places": 2}, "12345678901234567890.13"),
    (" 7.5 ", {}, "7.5"),
    ("+3", {}, "3"),
])
def test_to_decimal(value: str | int | float, options: dict[str, Any], expected: str) -> None:
    assert to_decimal(value, **options) == expected


@pytest.mark.parametrize("value", [
    "NaN", "inf", "-Infinity", float("nan"), float("inf"), "1,000", "1e5", "５０００", "12元", "", ".",
    "1.2.3", True, None, [1],
])
def test_to_decimal_rejects_non_numbers(value: Any) -> None:
    with pytest.raises(ValueFormatError):
        to_decimal(value)


def test_to_decimal_unknown_unit_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="千元"):
        to_decimal("1", unit="千元")


# --- fines in text -----------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "expected"), [
    ("罚款人民币贰仟元", "2000.00"),
    ("罚款5000元", "5000.00"),
    ("并处罚款人民币伍万元", "50000.00"),
    ("罚款1.5万元", "15000.00"),
    ("罚款人民币叁仟元整", "3000.00"),
    ("罚款人民币壹万贰仟伍佰元", "12500.00"),
    ("罚款两千元", "2000.00"),
    ("罚款一万零五百元", "10500.00"),
    ("罚款十五元", "15.00"),
    ("罚款人民币壹拾万元整", "100000.00"),
    ("罚款人民币伍佰元伍角", "500.50"),
    ("罚款：5,000.00元", "5000.00"),
    ("罚款 ５０００ 元", "5000.00"),
    ("处5000元罚款", "5000.00"),
    ("处以三千元的罚款", "3000.00"),
    ("没收违法所得人民币1200元，并处罚款人民币5000元", "5000.00"),
    ("依据第三十条，处二千元以上一万元以下罚款，决定罚款3000元", "3000.00"),
    ("警告，罚款人民币伍仟元，没收违法所得800元", "5000.00"),
    ("人民币贰仟元", "2000.00"),   # no 罚款 in the text: the only amount
    ("5000", "5000.00"),           # a bare number is yuan
    (3000, "3000.00"),
])
def test_amount_from_text(text: str | int, expected: str) -> None:
    assert amount_from_text(text) == expected  # type: ignore[arg-type]


@pytest.mark.parametrize("text", ["警告", "", "责令改正", "没收违法所得2000元", "处万元以下罚款", "第三条"])
def test_amount_from_text_none_when_no_fine(text: str) -> None:
    assert amount_from_text(text) is None


@pytest.mark.parametrize(("numeral", "value"), [
    ("壹万贰仟伍佰", 12500), ("十", 10), ("十五", 15), ("一百二十万", 1_200_000), ("两万零五百", 20500),
    ("一亿二千万", 120_000_000), ("壹仟零伍拾", 1050), ("万", None),
])
def test_chinese_numerals(numeral: str, value: int | None) -> None:
    assert chinese_numeral_value(numeral) == value


# --- booleans and integers ---------------------------------------------------------------------


@pytest.mark.parametrize(("value", "expected"), [
    ("是", True), ("否", False), ("Y", True), ("N", False), ("y", True), ("n", False), ("1", True),
    ("0", False), ("true", True), ("false", False), ("True", True), ("False", False), ("TRUE", True),
    (" 是 ", True), (True, True), (False, False), (1, True), (0, False),
])
def test_to_boolean(value: str | int | bool, expected: bool) -> None:
    assert to_boolean(value) is expected


@pytest.mark.parametrize("value", ["maybe", "", "2", 2, -1, "有", None, 1.0])
def test_to_boolean_rejects(value: Any) -> None:
    with pytest.raises(ValueFormatError):
        to_boolean(value)


@pytest.mark.parametrize(("value", "expected"), [
    ("12", 12), ("12.0", 12), ("+3", 3), ("-4", -4), (" 7 ", 7), (3.0, 3), (42, 42),
])
def test_to_integer(value: str | int | float, expected: int) -> None:
    assert to_integer(value) == expected


@pytest.mark.parametrize("value", ["12.5", "1,000", "１２", "1e3", "1_000", "", "-", 3.5, True, None])
def test_to_integer_rejects(value: Any) -> None:
    with pytest.raises(ValueFormatError):
        to_integer(value)
