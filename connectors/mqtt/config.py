"""Options of the MQTT connector: broker, session, topic templates and what each topic carries.

A topic template names its variable levels (``iot/v1/{region}/{device_id}/telemetry``); they
become MQTT ``+`` wildcards in the subscription and envelope metadata on each message.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

Codec = Literal["json", "hj212", "video_event", "gb28181", "status"]

# The variant (mapping selector) each payload kind gets unless the topic names its own.
DEFAULT_VARIANTS: dict[str, str] = {
    "json": "telemetry-json",
    "hj212": "hj212",
    "video_event": "video_event",
    "gb28181": "gb28181",
    "status": "status",
}

# Meta keys the mappings read as overrides of the registry, or the connector sets itself: a topic
# part with one of these names would silently override a looked-up value.
RESERVED_PARTS = frozenset({
    "admin_division_code", "supervised_object_uscc", "site_name", "lon", "lat", "provider_uscc",
    "received_at", "variant", "topic", "location", "connector", "department",
})

_PART = re.compile(r"\{([a-z_][a-z0-9_]*)\}")


class TopicRoute(BaseModel):
    """One subscribed topic template and how its payloads are read."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    template: str
    codec: Codec
    variant: str | None = None
    qos: Literal[0, 1] = 1

    @field_validator("template")
    @classmethod
    def _levels(cls, value: str) -> str:
        for level in value.split("/"):
            if level in ("+", "#") or ("{" in level and not _PART.fullmatch(level)):
                raise ValueError(f"level {level!r}: use a whole-level {{name}} part instead of wildcards")
        parts = _PART.findall(value)
        if reserved := sorted(set(parts) & RESERVED_PARTS):
            raise ValueError(f"topic parts {reserved} would override mapping metadata; rename them")
        if len(parts) != len(set(parts)):
            raise ValueError("a topic part name is used twice")
        return value

    @property
    def effective_variant(self) -> str:
        return self.variant or DEFAULT_VARIANTS[self.codec]


@dataclass(frozen=True, slots=True)
class CompiledRoute:
    route: TopicRoute
    pattern: re.Pattern[str]
    subscription: str

    def match(self, topic: str) -> dict[str, str] | None:
        found = self.pattern.fullmatch(topic)
        return None if found is None else found.groupdict()


def compile_route(route: TopicRoute, share_group: str | None) -> CompiledRoute:
    levels = route.template.split("/")
    regex = "/".join(
        f"(?P<{m.group(1)}>[^/]+)" if (m := _PART.fullmatch(level)) else re.escape(level) for level in levels
    )
    filter_ = "/".join("+" if _PART.fullmatch(level) else level for level in levels)
    subscription = f"$share/{share_group}/{filter_}" if share_group else filter_
    return CompiledRoute(route=route, pattern=re.compile(regex), subscription=subscription)


class BrokerOptions(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    host: str = "127.0.0.1"
    port: int = Field(default=1883, ge=1, le=65535)
    username: str | None = None
    password: SecretStr | None = None
    tls: bool = False
    ca_file: Path | None = None
    protocol: Literal["3.1.1", "5"] = "5"
    keepalive_s: int = Field(default=30, ge=5, le=3600)
    reconnect_min_s: float = Field(default=1.0, gt=0)
    reconnect_max_s: float = Field(default=60.0, gt=0)
    connect_timeout_s: float = Field(default=10.0, gt=0)


class MqttOptions(BaseModel):
    """The connector's ``options``."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    broker: BrokerOptions = BrokerOptions()
    client_id: str = Field(min_length=1, max_length=64,
                           description="Fixed per instance: the persistent session is bound to it.")
    clean_start: bool = False
    session_expiry_s: int = Field(default=3600, ge=0, description="MQTT 5 session expiry; the contract asks >= 1 h.")
    share_group: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_-]+$",
                                    description="Subscribe as $share/<group>/... so instances split the load.")
    topics: tuple[TopicRoute, ...] = Field(min_length=1)
    max_inflight: int = Field(
        default=2000, ge=1, le=65535,
        description="Unacknowledged messages the broker may send us (MQTT 5 Receive Maximum; for MQTT 3.1.1 the "
                    "broker's own limit, Mosquitto max_inflight_messages). Keep it above batch_max_messages.")
    # 1,000, not 500: under load a batch fills up while the previous one is written, and a write of
    # 1,000 records costs less per record than two of 500 (the store's index pages are written once
    # per commit): bench/mqtt.py 7-17 % less CPU per message. Idle, a batch still goes after batch_max_wait_s.
    batch_max_messages: int = Field(default=1000, ge=1, le=10_000,
                                    description="Messages read into one batch (one durable write per topic).")
    batch_max_wait_s: float = Field(default=0.02, ge=0, le=5,
                                    description="How long a batch waits for more messages after its first.")
    envelope_per_topic: bool = Field(
        default=False,
        description="One envelope per topic (every topic part in its meta) instead of one per topic template and "
                    "variant (the parts all its messages share in meta). Devices each on their own topic then give "
                    "envelopes of a message or two, one durable write each: for few, busy topics only.")
    store_retry_s: float = Field(default=0.5, gt=0)
    store_retry_max_s: float = Field(default=30.0, gt=0)
    max_payload_bytes: int = Field(default=64 * 1024, ge=1024)
    device_registry: Path | None = Field(default=None, description="GBK device registry CSV (iot-mqtt contract).")
    camera_registry: Path | None = Field(default=None, description="GBK camera registry CSV (video-ai contract).")
    label_table: Path | None = Field(default=None, description="GBK label table CSV (video-ai contract).")
    expected_interval_s: float = Field(default=300.0, gt=0,
                                       description="How often a device is expected to report unless overridden.")
    device_intervals_s: dict[str, float] = Field(default_factory=dict)
    silence_factor: float = Field(default=3.0, ge=1.0, description="Silent after factor x expected interval.")
    silence_check_s: float = Field(default=10.0, gt=0)
    duplicate_window_s: float = Field(
        default=600.0, ge=0,
        description="Events of one camera + label within this window after the first are suppressed.")
