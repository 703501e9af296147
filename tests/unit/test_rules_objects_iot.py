"""Rules of supervised_object (SOB-*), officer (OFF-*), supervision_item (SIT-*) and IoT (IOR-*, IOE-*)."""

from __future__ import annotations

import pytest

from tests.unit.test_rules import DROP, check, fields, sample

USCC = "91330106MA2H7K3P2R"
VALID_RIC = "330106198503121231"
BAD_RIC = "110105194912310021"


def entity(**changes: object) -> dict[str, object]:
    base = {"object_type": "法人", "object_id": USCC, "id_type": "001", "id_no": USCC, "owner_uscc": DROP}
    return sample("supervised_object", **{**base, **changes})


def person(**changes: object) -> dict[str, object]:
    base = {"object_type": "特定自然人", "object_id": VALID_RIC, "id_type": "111", "id_no": VALID_RIC}
    return sample("supervised_object", **{**base, "owner_uscc": DROP, **changes})


# --- supervised_object -----------------------------------------------------------------------------


@pytest.mark.parametrize("object_type", ["法人", "非法人组织", "个体工商户"])
def test_sob_001_entities_are_identified_by_uscc(object_type: str) -> None:
    assert fields("SOB-001", entity(object_type=object_type)) == []
    assert fields("SOB-001", entity(object_type=object_type, id_type="099")) == ["id_type"]


def test_sob_001_checks_the_uscc_and_object_id() -> None:
    bad = "91330106MA2H7K3P2Q"
    found = check("SOB-001", entity(id_no=bad, object_id=bad))
    assert [v.field for v in found] == ["id_no"]
    assert bad not in found[0].detail_en + found[0].detail_zh
    assert fields("SOB-001", entity(object_id="EQ-1")) == ["object_id"]


def test_sob_001_not_for_other_object_types() -> None:
    assert fields("SOB-001", sample("supervised_object")) == []


def test_sob_002_natural_person() -> None:
    assert fields("SOB-002", person()) == []
    assert fields("SOB-002", person(id_type="414", id_no="E12345678", object_id="E12345678")) == []
    assert fields("SOB-002", person(id_type="001")) == ["id_type"]
    assert fields("SOB-002", person(object_id="330106198503121232")) == ["object_id"]
    found = check("SOB-002", person(id_no=BAD_RIC, object_id=BAD_RIC))
    assert [v.field for v in found] == ["id_no"]
    assert BAD_RIC not in found[0].detail_en + found[0].detail_zh
    assert fields("SOB-002", entity()) == []


@pytest.mark.parametrize(("rule_id", "name"), [("SOB-003", "supervised_object"), ("IOR-004", "iot_reading")])
def test_lon_lat_together(rule_id: str, name: str) -> None:
    coords = {"lon": "120.1300", "lat": "30.2590"}
    assert fields(rule_id, sample(name, **coords)) == []
    assert fields(rule_id, sample(name, lon=DROP, lat=DROP)) == []
    assert fields(rule_id, sample(name, **{**coords, "lat": DROP})) == ["lat"]
    assert fields(rule_id, sample(name, **{**coords, "lon": ""})) == ["lon"]


def test_sob_004_inside_china() -> None:
    assert fields("SOB-004", sample("supervised_object")) == []
    assert fields("SOB-004", sample("supervised_object", lon="136.0000", lat="3.0000")) == []
    swapped = sample("supervised_object", lon="30.2590", lat="120.1300")
    found = check("SOB-004", swapped)
    assert [v.field for v in found] == ["lon", "lat"]
    assert "30.2590" not in found[0].detail_en + found[0].detail_zh


# --- officer and supervision_item ------------------------------------------------------------------


def test_off_001_certificate_dates() -> None:
    assert fields("OFF-001", sample("officer")) == []
    assert fields("OFF-001", sample("officer", cert_valid_until="2023-02-28")) == ["cert_issued_on"]


def test_off_002_active_officer_with_an_expired_certificate() -> None:
    assert fields("OFF-002", sample("officer", cert_valid_until="2025-06-01")) == []
    assert fields("OFF-002", sample("officer", cert_valid_until="2025-05-31")) == ["cert_valid_until"]
    assert fields("OFF-002", sample("officer", cert_valid_until="2025-05-31", active=False)) == []


def test_sit_001_impl_code_starts_with_the_implementing_body() -> None:
    assert fields("SIT-001", sample("supervision_item")) == []
    assert fields("SIT-001", sample("supervision_item", implementing_org_uscc=USCC)) == ["check_impl_code"]


def test_sit_002_003_dates() -> None:
    assert fields("SIT-002", sample("supervision_item", cancel_on="2025-01-01")) == []
    assert fields("SIT-002", sample("supervision_item", cancel_on="2024-12-31")) == ["take_effect_on"]
    late = sample("supervision_item", version_date="2025-01-02T09:00:01+08:00")
    assert fields("SIT-003", late) == ["version_date"]  # no clock skew in this rule


# --- IoT -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rule_id", "name", "field"),
    [("IOR-001", "iot_reading", "observed_at"), ("IOE-001", "iot_event", "occurred_at")],
)
def test_observation_not_from_the_future(rule_id: str, name: str, field: str) -> None:
    record = sample(name)
    assert fields(rule_id, record) == []
    record[field], record["received_at"] = "2025-06-10T10:10:00+08:00", "2025-06-10T10:00:00+08:00"
    assert fields(rule_id, record) == []  # exactly the 10 minutes of skew
    record[field] = "2025-06-10T10:10:00.5+08:00"
    assert fields(rule_id, record) == [field]


def test_ior_002_factor_codes_differ() -> None:
    assert fields("IOR-002", sample("iot_reading")) == []
    factors = [
        {"code": "a34004", "value": "1"},
        {"code": "a34004", "value": "2"},
        {"code": "a01001", "value": "3"},
    ]
    assert fields("IOR-002", sample("iot_reading", factors=factors)) == ["factors[1].code"]
    assert fields("IOR-002", sample("iot_reading", factors=factors[:2])) == ["factors[1].code"]
    assert fields("IOR-002", sample("iot_reading", factors=factors[:1])) == []  # one factor: nothing repeats


@pytest.mark.parametrize(
    ("raw", "reported"),
    [
        ("QN=1;ST=22;CN=2011;PW=***;MN=1;CP=&&a=1&&", []),
        ("QN=1;ST=22;CN=2011;MN=1;CP=&&a=1&&", []),
        ("QN=1;ST=22;CN=2011;PW=123456;MN=1;CP=&&a=1&&", ["raw"]),
        ("QN=1;PW=***;CN=2011;PW=123456", ["raw"]),
        ("QN=1;ST=22;CN=2011;PW=;MN=1", ["raw"]),
        ("##0099QN=1;ST=22;CN=2011;PW=****;MN=1", ["raw"]),
    ],
)
def test_ior_003_password_masked(raw: str, reported: list[str]) -> None:
    found = check("IOR-003", sample("iot_reading", raw=raw))
    assert [v.field for v in found] == reported
    assert all("123456" not in v.detail_en + v.detail_zh for v in found)


def test_ioe_002_channel_under_the_same_centre_and_industry() -> None:
    assert fields("IOE-002", sample("iot_event")) == []
    assert fields("IOE-002", sample("iot_event", channel_id="34020000001320000001")) == ["channel_id"]
    assert fields("IOE-002", sample("iot_event", channel_id=DROP)) == []
