from __future__ import annotations

import json
import re
import uuid
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
import pytest

from connectors.codecs import decode
from gateway.envelope import Envelope
from gateway.errors import MappingError
from gateway.ingest import Ingestor
from mapping.compiler import load_mapping
from mapping.record_id import (
    GATEWAY_FILLED_FIELDS,
    RECORD_ID_NAMESPACE,
    business_key,
    canonical_content,
    content_digest,
    record_id,
)
from mapping.standard import load_standard
from tests.conftest import MAPPINGS, SAMPLES

DATA = Path(__file__).resolve().parents[1] / "data" / "standard" / "records" / "valid"
UUID_RE = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")


def sample(name: str = "penalty.json") -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((DATA / name).read_text(encoding="utf-8"))
    return loaded


def rid(record: dict[str, Any]) -> str:
    kind = load_standard().kinds[record["record_kind"]]
    return record_id(kind.name, business_key(kind, record), record)


def test_namespace_is_the_documented_one() -> None:
    assert uuid.uuid5(uuid.NAMESPACE_URL, "urn:sgw:record-id:v1") == RECORD_ID_NAMESPACE


def test_id_is_the_documented_uuid5() -> None:
    record = sample()
    key = business_key(load_standard().kinds["penalty"], record)
    name = orjson.dumps(["penalty", list(key), content_digest(record)]).decode()
    assert rid(record) == str(uuid.uuid5(RECORD_ID_NAMESPACE, name))


@pytest.mark.parametrize("path", sorted(DATA.glob("*.json")), ids=lambda p: p.name)
def test_ids_are_lower_case_uuid5(path: Path) -> None:
    assert UUID_RE.fullmatch(rid(json.loads(path.read_text(encoding="utf-8"))))


def test_business_key_is_canonical() -> None:
    kind = load_standard().kinds["penalty"]
    record = sample() | {"implementing_org_uscc": " １１３３０１０６００２５００１２１ｃ ",
                         "decision_doc_no": "  杭西市监罚〔2025〕118号\u3000"}
    assert business_key(kind, record) == ("11330106002500121C", "杭西市监罚〔2025〕118号")
    assert business_key(kind, {}) == ("", "")


def test_business_key_of_non_string_parts() -> None:
    kind = load_standard().kinds["iot_reading"]
    record = sample("iot_reading.json")
    key = business_key(kind, record)
    assert key == (record["device_id"], record["command_code"], record["observed_at"])


def test_redelivered_copy_gets_the_same_id() -> None:
    first = sample()
    copy = first | {"received_at": "2025-06-21T09:00:00+08:00", "connector": "other-connector",
                    "record_id": "00000000-0000-4000-8000-0000000000ff", "standard_version": "1.1"}
    assert rid(copy) == rid(first)


def test_key_order_and_absent_values_do_not_matter() -> None:
    record = sample()
    reordered = dict(reversed(list(record.items())))
    padded = record | {"major_case": False, "transferred_at": None, "other_handling": "", "ext": []}
    without_major = {k: v for k, v in record.items() if k != "major_case"}
    assert rid(reordered) == rid(record)
    assert rid(padded) == rid(record)
    assert rid(without_major) != rid(record)  # false is a value, not absence


@pytest.mark.parametrize("change", [
    {"fine_amount_yuan": "5001.00"},
    {"operation": "u"},
    {"penalty_types": ["罚款", "警告"]},
    {"ext": {"local": 1}},
    {"decision_doc_no": "杭西市监罚〔2025〕119号"},
])
def test_a_changed_version_gets_a_new_id(change: dict[str, Any]) -> None:
    assert rid(sample() | change) != rid(sample())


def test_a_copy_sent_again_later_keeps_its_id() -> None:
    # submitted_at says when a version was sent (the read time, for sources without one): a
    # redelivered or re-sent copy is the same version.
    assert rid(sample() | {"submitted_at": "2025-06-20T18:05:01+08:00"}) == rid(sample())


def test_kind_is_part_of_the_id() -> None:
    record = sample()
    key = business_key(load_standard().kinds["penalty"], record)
    assert record_id("penalty", key, record) != record_id("coercion", key, record)


def test_canonical_content_leaves_gateway_fields_out_and_sorts_keys() -> None:
    content = json.loads(canonical_content(sample()))
    assert not GATEWAY_FILLED_FIELDS & set(content)
    assert "submitted_at" not in content
    assert list(content) == sorted(content)


def test_decimal_values_hash_like_their_string() -> None:
    assert rid(sample() | {"fine_amount_yuan": Decimal("5000.00")}) == rid(sample())


def test_non_json_value_is_a_mapping_error() -> None:
    with pytest.raises(MappingError):
        rid(sample() | {"ext": {"when": object()}})
    with pytest.raises(MappingError):
        content_digest({"d": date(2025, 1, 1), "x": {1, 2}} | {"bad": object()})


# Ids are idempotency keys: the targets dedupe on them, so a recipe change would duplicate every
# record sent again. These were computed by the recipe as documented; they must never change.
PINNED_IDS = {
    "coercion.json": "b7190805-dafd-5896-a99a-f46789cb18bc",
    "complaint_12315.json": "c34c4744-ca9f-5157-a3af-cf03eff6a1e1",
    "complaint_12345.json": "c7af3c80-af09-5c18-a21b-879300ac5850",
    "credit_license.json": "9a5870c4-e887-5b8e-ae59-feecc0790a2e",
    "credit_list.json": "9b7eacbf-eb4b-55ea-a961-da44f8b47ba6",
    "credit_penalty.json": "f4bdc609-d711-5bf7-964e-20dbdeaef1c6",
    "inspection.json": "1c0b1640-c60d-53cd-b609-c14016a6b9e8",
    "iot_event.json": "b8ff3438-ecfa-57c9-946a-972edb13441d",
    "iot_reading.json": "6c1e5cfe-dbbd-51e2-bf9b-ef6bff72de7b",
    "officer.json": "fdc0140c-00d6-5ab8-9d7c-0e1df3fd9743",
    "other_action.json": "18f677c1-3168-55a3-adc4-04f849953c4a",
    "penalty.json": "45d6fecc-8f26-5e2e-94c6-828113887d08",
    "supervised_object.json": "ffc0b8b8-4351-50f0-a93d-925730639f11",
    "supervision_item.json": "0c2b1578-5485-50b1-8416-6bdacbc5f952",
}


def test_pinned_ids_of_the_standard_records() -> None:
    assert {p.name: rid(sample(p.name)) for p in sorted(DATA.glob("*.json"))} == PINNED_IDS


def test_pinned_ids_through_ingest() -> None:
    # the whole path: mapping, gateway fields, id (a company, a 个体工商户 and a natural person row;
    # two MQTT readings)
    ingestor = Ingestor()
    received = datetime(2025, 6, 12, 9, 31, 40, tzinfo=UTC)
    csv = decode("csv", (SAMPLES / "batch-files" / "113301220025023382_XZCF_20250612_001.csv").read_bytes())
    envelope = Envelope(connector="batch-files", payload=csv, received_at=received, records_inline=True,
                        meta={"provider_uscc": "113301220025023382", "file_mtime": "2025-06-12T17:31:02+08:00"})
    rows = ingestor.evaluate(load_mapping(MAPPINGS / "batch-files.penalty-csv.yaml"), envelope, None)
    assert {o.record["source_record_id"]: o.record_id for o in rows if o.index in (0, 9, 17)} == {
        "CF3301222025000101": "1f0f8cf6-53bc-5ad8-830f-1d8aa979b7db",
        "CF3301222025000110": "5a199973-4434-5133-b3f9-47fd0edf92c7",
        "CF3301222025000118": "806467d1-0c95-583d-8da9-e0a99c8b98bc",
    }
    telemetry = load_mapping(MAPPINGS / "iot-mqtt.telemetry-json.yaml")
    readings: dict[str, str | None] = {}
    for name in ("telemetry-oil-fume.json", "telemetry-dust.json"):
        message = decode("json", (SAMPLES / "iot-mqtt" / name).read_bytes())
        envelope = Envelope(connector="iot-mqtt", payload=message, received_at=received,
                            meta={"provider_uscc": "113301000025441678"})
        readings.update((o.record["source_record_id"], o.record_id)
                        for o in ingestor.evaluate(telemetry, envelope, None))
    assert readings == {
        "YY3301060000771:2051:20250610103000": "439226cc-9965-526e-b58a-9e9e018924d9",
        "YC3301220000312:2011:20250610103100": "27702d1d-c886-5189-8155-8f03058c4f6d",
    }
