"""The Envelope: what a connector hands to ingest.

A connector speaks one protocol and turns what arrives into an Envelope; it does no mapping.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

JSONTree = Any
"""A decoded payload: dicts, lists, str, int, float, bool, None (never bytes)."""


@dataclass(frozen=True, slots=True)
class Refusal:
    """Something that arrived and could not become a payload (undecodable, failed the protocol's
    own checks): ``code`` a stable English code, ``message`` for people (Chinese first), ``raw``
    what arrived, ``location`` where (a topic)."""

    code: str
    message: str
    raw: bytes | str | None = None
    location: str | None = None


@dataclass(frozen=True, slots=True)
class Envelope:
    """One unit of input from a source.

    ``payload`` is the decoded tree (one record, a page of records, or a file's rows).
    ``meta`` carries where it came from, for mappings (``meta:`` sources) and for locations:
    e.g. ``topic``, ``file``, ``operation``, ``ticket``, and connector-configured values such as
    ``admin_division_code``. ``location`` is the base of error locations: for a JSON payload a
    JSON path root (``$``), for a file its name. ``raw`` keeps the bytes or text as received, for the
    rejections ledger (``None`` when ``payload`` is the original form). ``records_inline`` says the
    payload is already one record or a list of records (push ingest), so the mapping's ``records``
    path (written for the source's pages) is not applied. ``refused`` holds, instead of a payload,
    what arrived from a source that cannot be told (MQTT devices) and could not become one: ingest
    rejects each, so that it lands in the rejections ledger with its raw bytes, not only in a log.
    """

    connector: str
    payload: JSONTree
    received_at: datetime
    department: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    raw: bytes | str | None = None
    records_inline: bool = False
    refused: tuple[Refusal, ...] = ()
    envelope_id: str = field(default_factory=lambda: str(uuid.uuid4()))
