"""Identifier checks against every entry of the standard's examples.json, plus the edge cases
where the standard departs from python-stdnum."""

from __future__ import annotations

import json
import timeit
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from gateway.errors import ConfigError
from mapping.identifiers import (
    IDENTIFIER_TYPES,
    USCC_PLACEHOLDER,
    IdFinding,
    check_identifier,
    mod_11_10_check_digit,
    normalise_identifier,
    org_check_char,
    ric15_to_18,
    ric_check_char,
    uscc_check_char,
)

EXAMPLES_PATH = Path(__file__).resolve().parents[1] / "data" / "standard" / "examples.json"
EXAMPLES: dict[str, dict[str, Any]] = json.loads(EXAMPLES_PATH.read_text(encoding="utf-8"))
REFERENCE_DAY = date(2025, 6, 30)


def _cases(section: str) -> list[Any]:
    return [pytest.param(kind, entry, id=f"{kind}-{i}")
            for kind, sections in EXAMPLES.items() for i, entry in enumerate(sections.get(section, []))]


def _errors(findings: list[IdFinding]) -> list[IdFinding]:
    return [f for f in findings if f.severity == "error"]


def test_examples_cover_every_identifier_type() -> None:
    assert set(EXAMPLES) == IDENTIFIER_TYPES


@pytest.mark.parametrize(("kind", "value"), _cases("valid"))
def test_valid_example_has_no_finding(kind: str, value: str) -> None:
    assert check_identifier(kind, value, today=REFERENCE_DAY) == []


@pytest.mark.parametrize(("kind", "entry"), _cases("invalid"))
def test_invalid_example_first_error_code(kind: str, entry: dict[str, str]) -> None:
    errors = _errors(check_identifier(kind, entry["value"], today=REFERENCE_DAY))
    assert errors, entry["reason"]
    assert errors[0].code == entry["error"], entry["reason"]


@pytest.mark.parametrize(("kind", "entry"), _cases("accepted_with_warning"))
def test_warning_example_is_accepted_with_its_warning(kind: str, entry: dict[str, str]) -> None:
    findings = check_identifier(kind, entry["value"], today=REFERENCE_DAY)
    assert not _errors(findings)
    assert findings and findings[0].code == entry["warning"]
    assert findings[0].severity == "warning"


@pytest.mark.parametrize(("kind", "entry"), _cases("valid_with_options"))
def test_valid_with_options(kind: str, entry: dict[str, Any]) -> None:
    assert check_identifier(kind, entry["value"], today=REFERENCE_DAY, **entry["options"]) == []
    assert _errors(check_identifier(kind, entry["value"], today=REFERENCE_DAY))   # not without them


@pytest.mark.parametrize(("kind", "entry"), _cases("exceptions"))
def test_exception_list_turns_checksum_error_into_warning(kind: str, entry: dict[str, str]) -> None:
    value = entry["value"]
    listed = check_identifier(kind, value, uscc_exceptions=frozenset({value}))
    assert [(f.code, f.severity) for f in listed] == [(entry["warning_when_listed"], "warning")]
    unlisted = check_identifier(kind, value)
    assert [(f.code, f.severity) for f in unlisted] == [(entry["warning_when_listed"], "error")]


def test_uscc_worked_example_check_characters() -> None:
    assert uscc_check_char("91350100M000100Y4") == "3"
    assert org_check_char("M000100Y") == "4"


def test_uscc_detail_names_both_characters_in_both_languages() -> None:
    (finding,) = check_identifier("uscc", "91330106MA2H7K3P2Q")
    assert finding == IdFinding("IDENTIFIER_CHECKSUM", "error",
                                "check character is Q, expected R", "校验位应为R，实为Q")


def test_uscc_embedded_org_code_checked_even_when_final_char_is_right() -> None:
    body = "91330106MA2H7K3P3"
    findings = check_identifier("uscc", body + uscc_check_char(body))
    assert [f.code for f in findings] == ["IDENTIFIER_CHECKSUM"]
    assert "positions 9-17" in findings[0].detail_en


def test_uscc_letter_departments_accepted_zero_rejected() -> None:
    for dept in "ANY":
        first17 = dept + "1330106" + "L7J9GA98" + org_check_char("L7J9GA98")
        assert check_identifier("uscc", first17 + uscc_check_char(first17)) == []
    first17 = "01330106L7J9GA98" + org_check_char("L7J9GA98")
    assert check_identifier("uscc", first17 + uscc_check_char(first17))[0].code == "IDENTIFIER_FORMAT"


def test_uscc_placeholder_is_a_checksum_error() -> None:
    assert [f.code for f in check_identifier("uscc", USCC_PLACEHOLDER)] == ["IDENTIFIER_CHECKSUM"]


def test_ric_worked_examples() -> None:
    assert ric_check_char("11010519491231002") == "X"
    assert ric15_to_18("110105491231002") == "11010519491231002X"


def test_ric_birth_date_judged_against_today() -> None:
    born_2025_07_01 = "1101052025070100" + "1"
    value = born_2025_07_01 + ric_check_char(born_2025_07_01)
    assert _errors(check_identifier("ric", value, today=date(2025, 6, 30)))
    assert check_identifier("ric", value, today=date(2025, 7, 1)) == []


def test_ric_details_never_contain_the_number() -> None:
    values = ["110105194912310021", "330106198502301230", "11010519491231002x", "110105491231002"]
    for value in values:
        for finding in check_identifier("ric", value, today=REFERENCE_DAY):
            for detail in (finding.detail_en, finding.detail_zh):
                assert value not in detail
                assert value[6:14] not in detail


def test_ric_residence_permit_prefix_skips_table() -> None:
    first17 = "83000019900101123"
    assert check_identifier("ric", first17 + ric_check_char(first17), today=REFERENCE_DAY) == []


def test_admin_division_unknown_code_is_a_warning() -> None:
    (finding,) = check_identifier("admin_division", "330199")
    assert (finding.code, finding.severity) == ("IDENTIFIER_UNKNOWN", "warning")


def test_admin_division_township_000_rejected_even_when_allowed() -> None:
    (finding,) = check_identifier("admin_division", "330106000", allow_township=True)
    assert finding.code == "IDENTIFIER_FORMAT"


def test_business_reg_no_worked_example() -> None:
    assert mod_11_10_check_digit("33010600012345") == "8"
    (finding,) = check_identifier("business_reg_no", "330106000123459")
    assert finding.detail_zh == "MOD 11,10 校验位应为8，实为9"


def test_business_reg_no_chinese_text_is_legacy() -> None:
    (finding,) = check_identifier("business_reg_no", "企合浙总字第001234号")
    assert (finding.code, finding.severity) == ("IDENTIFIER_LEGACY", "warning")


def test_check_impl_code_prefix_findings_are_labelled() -> None:
    findings = check_identifier("check_impl_code", "11330106002500121D3000000000123001")
    assert findings[0].detail_en.startswith("positions 1-18")
    assert findings[0].detail_zh.startswith("第1-18位")


def test_check_impl_code_exception_list_applies_to_prefix() -> None:
    value = "91350100M0001TGQXM3"
    assert _errors(check_identifier("check_impl_code", value))
    listed = check_identifier("check_impl_code", value, uscc_exceptions=frozenset({"91350100M0001TGQXM"}))
    assert [f.severity for f in listed] == ["warning"]


def test_check_impl_code_rejects_non_ascii_control_characters() -> None:
    assert check_identifier("check_impl_code", "11330106002500121C3\u200b")[0].code == "IDENTIFIER_FORMAT"


@pytest.mark.parametrize("kind", sorted(IDENTIFIER_TYPES))
def test_non_string_is_a_format_error(kind: str) -> None:
    findings = check_identifier(kind, 330106)  # type: ignore[arg-type]
    assert findings[0].code == "IDENTIFIER_FORMAT"


def test_unknown_identifier_type_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="tax_no"):
        check_identifier("tax_no", "123")


@pytest.mark.parametrize(("raw", "canonical"), [
    (" 9133 0106ma2h7k3p2r\t", "91330106MA2H7K3P2R"),
    ("９１３３０１０６ＭＡ２Ｈ７Ｋ３Ｐ２Ｒ", "91330106MA2H7K3P2R"),
    ("3301\u300006\u200b", "330106"),
    ("11010519491231002x", "11010519491231002X"),
    ("MA2H7K3P-2", "MA2H7K3P-2"),   # the hyphen is the org-code caller's business
])
def test_normalise_identifier(raw: str, canonical: str) -> None:
    assert normalise_identifier(raw) == canonical


def test_uscc_check_costs_a_few_microseconds() -> None:
    check_identifier("uscc", "91350100M000100Y43")
    n = 20_000
    per_call_s = timeit.timeit(lambda: check_identifier("uscc", "91350100M000100Y43"), number=n) / n
    assert per_call_s < 20e-6   # a few µs measured; generous bound for slow CI machines
