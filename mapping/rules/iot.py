"""Rules of iot_reading (IOR-*) and iot_event (IOE-*)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from mapping.rules.compare import repeats
from mapping.rules.objects import both_or_neither
from mapping.rules.ordering import times_in_order
from mapping.rules.violation import HOLDS, Result, RuleFn, Violation

# The value of every PW= segment of an HJ 212 packet, up to the next field separator.
_PASSWORD = re.compile(r"PW=([^;,&\r\n]*)")
_MASK = "***"
_GBT28181_PREFIX = 10  # centre code (8) + industry code (2)


def ior_002(record: Mapping[str, Any]) -> Result:
    factors = record.get("factors")
    if type(factors) is list and len(factors) < 2:  # most readings carry one factor: nothing can repeat
        return HOLDS
    return tuple(
        Violation(f"factors[{index}].code", f"factor code {code} appears more than once", f"监测因子编码{code}重复")
        for index, code in repeats(factors, "code")
    )


def ior_003(record: Mapping[str, Any]) -> Result:
    raw = record.get("raw")
    if not raw or "PW=" not in raw:
        return HOLDS
    if all(password == _MASK for password in _PASSWORD.findall(raw)):
        return HOLDS
    return (
        Violation(
            "raw",
            "raw contains an unmasked HJ 212 access password; PW= must read PW=***",
            "原始报文含未屏蔽的HJ 212访问密码，PW=应为PW=***",
        ),
    )


def ioe_002(record: Mapping[str, Any]) -> Result:
    channel_id, device_id = record.get("channel_id"), record.get("device_id")
    if not channel_id or not device_id or channel_id[:_GBT28181_PREFIX] == device_id[:_GBT28181_PREFIX]:
        return HOLDS
    return (
        Violation(
            "channel_id",
            "channel_id's first 10 digits differ from device_id's (centre and industry codes)",
            "通道编码前10位（中心编码和行业编码）与设备编码不一致",
        ),
    )


RULES: Mapping[str, RuleFn] = {
    "IOR-001": times_in_order("iot_reading", "observed_at", "received_at", skew=True),
    "IOR-002": ior_002,
    "IOR-003": ior_003,
    "IOR-004": both_or_neither("iot_reading"),
    "IOE-001": times_in_order("iot_event", "occurred_at", "received_at", skew=True),
    "IOE-002": ioe_002,
}
