"""The IoT, video and hotline mappings on their sources' samples: what each contract insists on."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import cache, lru_cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from connectors.codecs import decode
from gateway.errors import PayloadError
from mapping.compiler import CompiledMapping, load_mapping
from mapping.findings import Finding
from mapping.record_id import business_key
from mapping.standard import load_standard
from mapping.validation import Validator
from tests.conftest import MAPPINGS, SAMPLES

SHANGHAI = ZoneInfo("Asia/Shanghai")
IOT_PROVIDER = "113301000025441678"
VIDEO_PROVIDER = "11330000MB1F027810"
SCJ_PROVIDER = "11330000002500009H"


@cache
def mapping(name: str) -> CompiledMapping:
    return load_mapping(MAPPINGS / f"{name}.yaml")


@lru_cache(maxsize=1)
def validator() -> Validator:
    return Validator(load_standard("1.0"))


@dataclass(frozen=True, slots=True)
class Outcome:
    status: str
    record: dict[str, Any]
    errors: tuple[Finding, ...]
    warnings: tuple[Finding, ...]
    business_key: tuple[str, ...]
    source_path: str


def sample(source: str, file: str, fmt: str) -> Any:
    return decode(fmt, (SAMPLES / source / file).read_bytes())


def run(name: str, payload: Any, received_at: str, **meta: Any) -> list[Outcome]:
    """Map and validate as ingest does, with the gateway-filled fields set first."""
    compiled = mapping(name)
    kind = load_standard("1.0").kinds[compiled.kind]
    received = datetime.fromisoformat(received_at).astimezone(SHANGHAI).isoformat()
    meta = {"received_at": received, **meta}
    outcomes = []
    for mapped in compiled.map(payload, meta):
        record = dict(mapped.record, received_at=received, connector="test", standard_version="1.0",
                      record_id="00000000-0000-5000-8000-000000000000")
        findings = [*mapped.findings, *validator().validate(record)]
        errors = tuple(f for f in findings if f.is_error)
        warnings = tuple(f for f in findings if not f.is_error)
        outcomes.append(Outcome("rejected" if errors else "accepted", record, errors, warnings,
                                business_key(kind, record), mapped.source_path))
    return outcomes


def only(outcomes: list[Outcome]) -> Outcome:
    assert len(outcomes) == 1
    return outcomes[0]


def codes(outcome: Outcome) -> set[tuple[str, str]]:
    return {(f.code, f.field) for f in outcome.errors}


def test_every_mapping_file_of_this_group_loads() -> None:
    names = ["iot-mqtt.telemetry-json", "iot-mqtt.hj212", "video-ai.event-json", "video-ai.alarm-gb28181",
             "hotline-12345.workorder", "hotline-12315.case"]
    kinds = {n: mapping(n).kind for n in names}
    assert kinds == {
        "iot-mqtt.telemetry-json": "iot_reading", "iot-mqtt.hj212": "iot_reading",
        "video-ai.event-json": "iot_event", "video-ai.alarm-gb28181": "iot_event",
        "hotline-12345.workorder": "complaint", "hotline-12315.case": "complaint",
    }
    assert all(mapping(n).examples for n in names)


# --- iot-mqtt: HJ 212 ---------------------------------------------------------------------------

def hj212(file: str, received_at: str) -> Outcome:
    payload = sample("iot-mqtt", file, "hj212")
    return only(run("iot-mqtt.hj212", payload, received_at, provider_uscc=IOT_PROVIDER))


def test_hj212_minute_data_takes_avg_flags_and_registry_enterprise() -> None:
    out = hj212("hj212-2051-minute-fluegas.txt", "2025-06-10T10:10:03+08:00")
    rec = out.record
    assert out.status == "accepted", out.errors
    assert rec["command_code"] == "2051"
    assert rec["observed_at"] == "2025-06-10T10:00:00+08:00"
    nox = next(f for f in rec["factors"] if f["code"] == "a21002")
    assert nox == {"code": "a21002", "value": "42.0", "flag": "C", "unit": "mg/m3"}
    assert [f["value"] for f in rec["factors"]][:2] == ["69.2", "8.6"]     # -Avg, not -Min/-Max/-Cou
    assert rec["supervised_object_uscc"] == "91330111MA2G1N4Y72"
    assert rec["admin_division_code"] == "330111"
    assert rec["source_record_id"] == "ZY330111000002FQ0001:2051:20250610100000"
    assert out.business_key == ("ZY330111000002FQ0001", "2051", "2025-06-10T10:00:00+08:00")


def test_hj212_realtime_takes_rtd_and_masks_the_password() -> None:
    out = hj212("hj212-2011-realtime-wastewater.txt", "2025-06-10T10:00:01+08:00")
    rec = out.record
    assert out.status == "accepted", out.errors
    assert rec["command_code"] == "2011"
    assert [(f["code"], f["value"]) for f in rec["factors"]] == [
        ("w00000", "12.6"), ("w01018", "48.3"), ("w21003", "2.15"), ("w01001", "7.42"), ("w21011", "0.31")]
    assert "PW=***;" in rec["raw"]
    assert "123456" not in rec["raw"]


def test_hj212_hourly_keeps_interval_extremes_only_in_raw() -> None:
    out = hj212("hj212-2061-hourly-wastewater.txt", "2025-06-10T11:00:06+08:00")
    assert out.status == "accepted", out.errors
    assert all(set(f) <= {"code", "value", "flag", "unit", "sample_time"} for f in out.record["factors"])
    assert "w00000-Cou=1860.5" in out.record["raw"]


def test_hj212_bad_crc_never_reaches_the_mapping() -> None:
    with pytest.raises(PayloadError) as caught:
        sample("iot-mqtt", "hj212-bad-crc.txt", "hj212")
    assert caught.value.code == "CRC"


def test_hj212_unmasked_password_in_an_inline_tree_is_rejected_by_ior_003() -> None:
    tree = sample("iot-mqtt", "hj212-2011-realtime-wastewater.txt", "hj212")
    tree["raw"] = tree["raw"].replace("PW=***", "PW=123456")
    out = only(run("iot-mqtt.hj212", tree, "2025-06-10T10:00:01+08:00", provider_uscc=IOT_PROVIDER))
    assert ("RULE:IOR-003", "raw") in codes(out)


# --- iot-mqtt: JSON telemetry ------------------------------------------------------------------

def telemetry(file: str, received_at: str, **meta: Any) -> Outcome:
    payload = sample("iot-mqtt", file, "json")
    return only(run("iot-mqtt.telemetry-json", payload, received_at, provider_uscc=IOT_PROVIDER, **meta))


def test_telemetry_epoch_ms_and_rtd_become_observed_at_and_2011() -> None:
    out = telemetry("telemetry-dust.json", "2025-06-10T10:31:01+08:00")
    assert out.status == "accepted", out.errors
    assert out.record["observed_at"] == "2025-06-10T10:31:00+08:00"
    assert out.record["command_code"] == "2011"
    assert out.record["source_record_id"] == "YC3301220000312:2011:20250610103100"
    wind = out.record["factors"][-1]
    assert (wind["code"], wind["flag"], wind["unit"]) == ("a01007", "D", "m/s")
    assert (out.record["lon"], out.record["lat"]) == ("119.691233", "29.797316")


def test_telemetry_switch_states_without_unit_stay_unitless() -> None:
    out = telemetry("telemetry-oil-fume.json", "2025-06-10T10:30:02+08:00")
    assert out.status == "accepted", out.errors
    purifier = out.record["factors"][-1]
    assert purifier == {"code": "x20002", "value": "0", "flag": "N"}
    assert out.record["command_code"] == "2051"


def test_telemetry_of_a_decommissioned_device_is_rejected_with_the_contracts_code() -> None:
    # iot-mqtt README "Device registry": rejected as IOT_DEVICE_INACTIVE (unknown: IOT_UNKNOWN_DEVICE)
    out = telemetry("telemetry-decommissioned-device.json", "2025-06-10T10:31:01+08:00")
    assert out.status == "rejected"
    assert codes(out) == {("IOT_DEVICE_INACTIVE", "ext.registry_status")}
    assert out.errors[0].message_zh == "设备已停用（登记表状态为停用）（取值“停用”）"


def test_status_messages_are_not_readings() -> None:
    # the connector keeps status as device state; fed to the reading mapping it cannot pass
    out = telemetry("status-offline-lwt.json", "2025-06-10T10:31:01+08:00")
    assert out.status == "rejected"
    assert {("REQUIRED", "command_code"), ("REQUIRED", "factors")} <= codes(out)


# --- video-ai ----------------------------------------------------------------------------------

def test_ai_event_maps_label_priority_and_kitchen_enterprise() -> None:
    payload = sample("video-ai", "event-no-chef-hat.json", "json")
    out = only(run("video-ai.event-json", payload, "2025-06-10T10:30:16+08:00", provider_uscc=VIDEO_PROVIDER))
    rec = out.record
    assert out.status == "accepted", out.errors
    assert (rec["event_type"], rec["priority"], rec["method"]) == ("no_chef_hat", 4, "5")
    assert rec["description"] == "未戴厨师帽（后厨热菜区）"
    assert rec["supervised_object_uscc"] == "91330106MA2H7K3P2R"
    assert rec["image_urls"] == [payload["image"]["url"]]
    assert rec["disposal_status"] == "未处置"


def test_street_camera_event_has_no_enterprise_and_the_point_as_site() -> None:
    payload = sample("video-ai", "event-road-occupation.json", "json")
    out = only(run("video-ai.event-json", payload, "2025-06-10T16:42:07+08:00", provider_uscc=VIDEO_PROVIDER))
    assert out.status == "accepted", out.errors
    assert "supervised_object_uscc" not in out.record
    assert out.record["site_name"] == "示例路与示例街交叉口"
    assert out.record["video_url"].startswith("https://vsp.example/clip/")


def test_gb28181_alarm_event_id_label_prefix_and_description() -> None:
    payload = sample("video-ai", "alarm-notify-no-helmet.xml", "gb28181")
    out = only(run("video-ai.alarm-gb28181", payload, "2025-06-12T14:05:34+08:00",
                   provider_uscc=VIDEO_PROVIDER))
    rec = out.record
    assert out.status == "accepted", out.errors
    assert rec["event_id"] == rec["source_record_id"] == "33012200001320000044-20250612140533-5"
    assert (rec["event_type"], rec["priority"]) == ("no_helmet", 2)
    assert rec["description"] == "塔吊作业区人员未戴安全帽"
    assert rec["occurred_at"] == "2025-06-12T14:05:33+08:00"


def test_gb28181_device_alarm_method_and_type_give_video_loss() -> None:
    payload = sample("video-ai", "alarm-notify-video-loss.xml", "gb28181")
    out = only(run("video-ai.alarm-gb28181", payload, "2025-06-12T23:40:03+08:00",
                   provider_uscc=VIDEO_PROVIDER))
    assert (out.record["event_type"], out.record["method"]) == ("video_loss", "2")


def test_event_of_an_unregistered_camera_is_rejected() -> None:
    payload = dict(sample("video-ai", "event-no-chef-hat.json", "json"), cameraId="33010600001320000099")
    out = only(run("video-ai.event-json", payload, "2025-06-10T10:30:16+08:00", provider_uscc=VIDEO_PROVIDER))
    assert out.status == "rejected"
    assert ("CODE_UNKNOWN", "ext.registry_status") in codes(out)


# --- hotline-12345 -----------------------------------------------------------------------------

def workorder(file: str, timestamp: str, **changes: Any) -> Outcome:
    payload = dict(sample("hotline-12345", file, "json"), **changes)
    return only(run("hotline-12345.workorder", payload, "2025-06-20T09:00:00+08:00", timestamp=timestamp))


def test_12345_complaint_and_report_differ_by_request_type() -> None:
    complaint = workorder("push-complaint.body.json", "1748742005")
    report = workorder("push-report.body.json", "1749515714")
    assert complaint.status == report.status == "accepted", (complaint.errors, report.errors)
    assert complaint.record["request_type"] == "投诉"
    assert report.record["request_type"] == "举报"
    assert report.record["anonymous"] is True and complaint.record["anonymous"] is False
    assert complaint.record["channel"] == report.record["channel"] == "12345"
    assert complaint.record["submitted_at"] == "2025-06-01T09:40:05+08:00"   # X-12345-Timestamp
    assert complaint.record["provider_uscc"] == "12330100470017253E"
    assert complaint.record["ext"] == {"due_date": "2025-06-08"}
    assert complaint.business_key == ("12345", "GD20250601004512")


def test_12345_complaint_personal_fields_are_mapped_as_given() -> None:
    rec = workorder("push-complaint.body.json", "1748742005").record
    assert (rec["requester_name"], rec["requester_phone"]) == ("陈女士", "13800000000")
    assert "requester_address" not in rec     # empty in the push


@pytest.mark.parametrize(("tslx", "operation"), [("1", "i"), ("2", "u"), ("3", "d"), ("4", "u")])
def test_12345_push_type_gives_the_operation(tslx: str, operation: str) -> None:
    out = workorder("push-complaint.body.json", "1748742005", tslx=tslx)
    assert out.status == "accepted", out.errors
    assert out.record["operation"] == operation


def test_12345_named_complaint_without_name_is_rejected_without_leaking_values() -> None:
    out = workorder("push-complaint.body.json", "1748742005", sqrxm="", sqrdh="call me")
    assert out.status == "rejected"
    assert {("REQUIRED", "requester_name"), ("PATTERN", "requester_phone")} <= codes(out)
    assert not any("call me" in f.message_en or "call me" in f.message_zh for f in out.errors)


def test_12345_praise_is_not_a_standard_request_type() -> None:
    out = workorder("push-complaint.body.json", "1748742005", sqlx="6")
    assert ("CODE_UNKNOWN", "request_type") in codes(out)


# --- hotline-12315 -----------------------------------------------------------------------------

def cases(file: str) -> list[Outcome]:
    payload = sample("hotline-12315", file, "json")
    return run("hotline-12315.case", payload, "2025-06-10T09:30:00+08:00", provider_uscc=SCJ_PROVIDER)


def test_12315_pages_yield_one_record_per_listed_case() -> None:
    page1, page2 = cases("cases-page-1.json"), cases("cases-page-2.json")
    assert [o.record["source_ticket_no"] for o in page1 + page2] == [
        "1330106202506030017", "1330122202506050008", "2330122202504200031"]
    assert all(o.status == "accepted" for o in page1 + page2), [o.errors for o in page1 + page2]
    assert [o.source_path for o in page1] == ["data.list[0]", "data.list[1]"]


def test_12315_accept_decisions_reasons_and_mediation() -> None:
    mediated, refused = (o.record for o in cases("cases-page-1.json"))
    assert (mediated["accept_decision"], mediated["accept_decided_at"]) == ("受理", "2025-06-05")
    assert (mediated["mediation_method"], mediated["mediation_result"]) == ("即时调解", "达成调解协议")
    assert mediated["recovered_loss_yuan"] == "58.00" and mediated["fraud_flag"] is False
    assert mediated["submitted_at"] == "2025-06-06T16:45:10+08:00"            # modifiedTime
    assert (refused["accept_decision"], refused["rejection_reason"]) == ("不予受理", "非为生活消费需要")
    assert "mediation_method" not in refused
    assert refused["consumption_amount_yuan"] == "36800.00"


def test_12315_anonymous_report_turned_into_a_case() -> None:
    report = only(cases("cases-page-2.json")).record
    assert report["request_type"] == "举报"
    assert report["anonymous"] is True and report["converted_to_case"] is True
    assert not {"requester_name", "requester_phone", "requester_address"} & report.keys()
    assert report["closed_at"] == "2025-06-10"


def test_12315_complaint_missing_mandatory_consumer_data_is_rejected() -> None:
    payload = sample("hotline-12315", "cases-page-1.json", "json")
    case = payload["data"]["list"][0]
    case["complainant"]["phone"] = None
    case["demand"] = ""
    out = run("hotline-12315.case", payload, "2025-06-10T09:30:00+08:00", provider_uscc=SCJ_PROVIDER)[0]
    assert out.status == "rejected"
    assert codes(out) == {("REQUIRED", "requester_phone"), ("REQUIRED", "demand")}


def test_12315_case_still_in_handling_has_no_closing_date() -> None:
    payload = sample("hotline-12315", "cases-page-2.json", "json")
    payload["data"]["list"][0]["status"] = "1"
    out = only(run("hotline-12315.case", payload, "2025-06-10T09:30:00+08:00",
                   provider_uscc=SCJ_PROVIDER, operation="u"))
    assert "closed_at" not in out.record
    assert out.record["operation"] == "u"


def test_received_time_in_meta_is_beijing_time() -> None:
    # guards the examples' assumption that meta received_at is rendered in +08:00
    out = telemetry("telemetry-dust.json", "2025-06-10T02:31:01+00:00")
    assert out.record["submitted_at"] == datetime(2025, 6, 10, 10, 31, 1, tzinfo=SHANGHAI).isoformat()


def test_mapping_files_sit_beside_their_references() -> None:
    # references are resolved relative to the mapping file: keep config/reference next to config/mappings
    assert (Path(mapping("iot-mqtt.hj212").spec_path).parent.parent / "reference").is_dir()
