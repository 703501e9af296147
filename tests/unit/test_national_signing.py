"""National platform signature and body, byte for byte against the contract's samples."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from adapters.national_platform.payload import encode_body, encode_record
from adapters.national_platform.signing import canonical_string, sign, signed_headers
from adapters.national_platform.sm3 import PureSM3, sm3_constructor

DATA = Path(__file__).resolve().parent.parent / "data" / "national_platform"
SECRET = "nat-test-secret-0001"


def split_http(raw: bytes) -> tuple[str, dict[str, str], bytes]:
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("utf-8").split("\r\n")
    headers = {k.strip(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    return lines[0], headers, body


def sample_body() -> dict[str, Any]:
    body: dict[str, Any] = json.loads((DATA / "batch-request.body.json").read_text(encoding="utf-8"))
    return body


def test_sm3_known_answers_pure_and_openssl_agree() -> None:
    assert PureSM3(b"abc").hexdigest() == "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0"
    assert PureSM3(b"abcd" * 16).hexdigest() == "debe9ff92275b8a138604889c18e5a4d6fdb70e5387e5765293dcba39c0c5732"
    for message in (b"", b"x" * 55, b"y" * 56, b"z" * 64, "监管".encode() * 100):
        incremental = PureSM3()
        incremental.update(message[:7])
        incremental.update(message[7:])
        assert incremental.hexdigest() == PureSM3(message).hexdigest()
        if "sm3" in hashlib.algorithms_available:
            assert PureSM3(message).hexdigest() == hashlib.new("sm3", message).hexdigest()
    assert sm3_constructor()(b"abc").hexdigest() == PureSM3(b"abc").hexdigest()


@pytest.mark.parametrize(("sample", "method"), [("batch-request.http", "HMAC-SM3"),
                                                ("batch-request-hmac-sha256.http", "HMAC-SHA256")])
def test_the_sample_requests_are_reproduced_byte_for_byte(sample: str, method: Any) -> None:
    start, headers, body = split_http((DATA / sample).read_bytes())
    assert start == "POST /api/v1/records:batch HTTP/1.1"
    doc = sample_body()
    ours = encode_body(doc["batch_id"], [encode_record(r) for r in doc["records"]])
    assert ours == body
    assert len(ours) == int(headers["Content-Length"])
    signed = signed_headers(app_id="zj330000sgw", secret=SECRET, method=method, body=ours,
                            timestamp_ms=int(headers["X-Timestamp"]), nonce=headers["X-Nonce"])
    assert signed == {k: headers[k] for k in ("X-App-Id", "X-Timestamp", "X-Nonce", "X-Signature-Method",
                                              "X-Signature")}


def test_the_test_vector_canonical_strings_and_signatures() -> None:
    text = (DATA / "signature-test-vector.txt").read_text(encoding="utf-8")
    _, body = split_http((DATA / "batch-request.http").read_bytes())[::2]
    for section, method in zip(text.split("== ")[1:], ("HMAC-SM3", "HMAC-SHA256"), strict=True):
        lines = section.splitlines()
        vector_canonical = "\n".join(lines[3:9])
        vector_signature = lines[9].removeprefix("X-Signature: ")
        canonical = canonical_string("/api/v1/records:batch", "zj330000sgw", "1750413900000",
                                     "9f86d081884c7d659a2feaa0c55ad015", body, method)  # type: ignore[arg-type]
        assert canonical == vector_canonical
        assert sign(SECRET, canonical, method) == vector_signature  # type: ignore[arg-type]


def test_pure_sm3_signs_like_openssl_through_hmac() -> None:
    import hmac
    ours = hmac.new(b"key", b"The quick brown fox jumps over the lazy dog", PureSM3).hexdigest()  # type: ignore[arg-type]
    if "sm3" in hashlib.algorithms_available:
        assert ours == hmac.new(b"key", b"The quick brown fox jumps over the lazy dog", "sm3").hexdigest()
    assert len(ours) == 64
