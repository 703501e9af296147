"""Standard records -> the platform's batch body, and the batches that fit its limits.

Records go as they are (identity mapping: the standard's names and formats), without ``ext`` and
without absent (None) fields. The body is compact UTF-8 JSON; each record is encoded once, so a
batch's size is known before it is assembled and a 413 split re-uses the encodings. Encoded by
orjson (several times faster than ``json``); a value orjson refuses (an integer beyond 64 bits, a
non-string key) falls back to ``json``. A record that still has the JSON it was read from (a
``JsonRecord`` from the Redis outbox, written by orjson) and needs nothing removed is sent as those
bytes: encoding it again would give the same ones, at the cost of a few µs. The signature is
computed over the bytes sent, whichever encoder made them.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import orjson

from adapters.base import JsonRecord

MAX_RECORDS = 500
MAX_BODY_BYTES = 5_242_880
_EMPTY_BODY = len(b'{"batch_id":"","records":[]}')


def platform_record(record: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in record.items() if k != "ext" and v is not None}


def encode_record(record: Mapping[str, Any]) -> bytes:
    if isinstance(record, JsonRecord) and record.json is not None and not record.may_have("ext") \
            and record.json.find(b":null") < 0:
        # what orjson wrote, and encoding the record again would write: no absent field to drop
        # (a null inside a value, or the text in a string, only costs the encoding below); a record
        # not read yet (``JsonRecord.unread``) is then sent without ever being read
        return record.json
    # Most records have neither ext nor absent fields: encoded without building a filtered copy first.
    fields = record if type(record) is dict and "ext" not in record and None not in record.values() \
        else platform_record(record)
    try:
        return orjson.dumps(fields)
    except TypeError:  # orjson.JSONEncodeError: out-of-range integer, non-str key, ...
        return json.dumps(fields, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def encode_body(batch_id: str, records: Sequence[bytes]) -> bytes:
    head = orjson.dumps(batch_id)
    return b'{"batch_id":' + head + b',"records":[' + b",".join(records) + b"]}"


def batch_id_for(app_id: str, record_ids: Sequence[str]) -> str:
    """The same records in the same order get the same id: a retry after a lost answer is then a
    replay the platform answers from its store (409 40900), never a second submission."""
    digest = hashlib.sha256("\n".join(record_ids).encode("utf-8")).hexdigest()
    return f"{app_id}-{digest[:min(40, 63 - len(app_id))]}"


class Encoded(NamedTuple):  # a tuple: made once per record per delivery, so made cheaply
    record_id: str
    body: bytes


def body_size(batch_id: str, records: Sequence[Encoded]) -> int:
    commas = max(len(records) - 1, 0)
    return _EMPTY_BODY + len(batch_id) + commas + sum(len(r.body) for r in records)


def plan(records: Sequence[Encoded], *, max_records: int, max_bytes: int, id_length: int) -> list[list[Encoded]]:
    """Greedy batches in input order, each within ``max_records`` and ``max_bytes`` (a batch_id of
    ``id_length`` characters). A record too large on its own gets a batch of its own."""
    batches: list[list[Encoded]] = []
    current: list[Encoded] = []
    size = _EMPTY_BODY + id_length
    for record in records:
        extra = len(record.body) + (1 if current else 0)
        if current and (len(current) >= max_records or size + extra > max_bytes):
            batches.append(current)
            current, size, extra = [], _EMPTY_BODY + id_length, len(record.body)
        current.append(record)
        size += extra
    if current:
        batches.append(current)
    return batches
