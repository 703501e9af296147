from __future__ import annotations

import json
import re
import uuid
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
import pytest

from gateway.errors import MappingError
from mapping.record_id import (
    GATEWAY_FILLED_FIELDS,
    RECORD_ID_NAMESPACE,
    business_key,
    canonical_content,
    content_digest,
    record_id,
)
from mapping.standard import load_standard

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
