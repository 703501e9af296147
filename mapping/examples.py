"""Golden examples: each mapping carries payloads and the records they must produce.

The engine maps; the caller's ``check`` (ingest: validate and fill the gateway fields) turns each
mapped record into the final record and all its findings, so this module needs no runtime. Records
compare without the gateway-filled fields; findings compare as sets of (code, field) pairs.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from gateway.errors import GatewayError
from mapping.compiler import CompiledMapping, MappedRecord
from mapping.findings import Finding
from mapping.spec import ExampleSpec, ExpectedFinding, ExpectedRecord

Check = Callable[[MappedRecord, Mapping[str, Any]], tuple[dict[str, Any], list[Finding]]]
Decode = Callable[[str, bytes], Any]

GATEWAY_FIELDS = frozenset({"record_id", "received_at", "connector", "standard_version"})
_TREE_FORMATS = frozenset({"json"})


@dataclass(frozen=True, slots=True)
class ExampleFailure:
    mapping: str
    example: str
    message: str

    def __str__(self) -> str:
        return f"{self.mapping} / {self.example}: {self.message}"


class _ExampleError(Exception):
    """The example could not be run at all (payload unreadable, mapping refused the payload)."""


def run_examples(
    mapping: CompiledMapping, check: Check, decode: Decode | None = None
) -> list[ExampleFailure]:
    """Run every golden example of ``mapping``; an empty list means all passed."""
    failures: list[ExampleFailure] = []
    for example in mapping.examples:
        try:
            messages = _run_one(mapping, example, check, decode)
        except _ExampleError as exc:
            messages = [str(exc)]
        failures.extend(ExampleFailure(mapping.name, example.name, m) for m in messages)
    return failures


def _payload(mapping: CompiledMapping, example: ExampleSpec, decode: Decode | None) -> Any:
    if example.payload_file is None:
        inline = example.payload
        if not isinstance(inline, str) or mapping.format in _TREE_FORMATS:
            return inline
        data = inline.encode("utf-8")
    else:
        try:
            data = (mapping.spec_path.parent / example.payload_file).read_bytes()
        except OSError as exc:
            raise _ExampleError(f"cannot read payload_file {example.payload_file}: {exc.strerror}") from exc
    if decode is None:
        raise _ExampleError(f"no decoder given for format {mapping.format}")
    try:
        return decode(mapping.format, data)
    except GatewayError as exc:
        raise _ExampleError(f"payload does not decode as {mapping.format}: {exc}") from exc


def _run_one(
    mapping: CompiledMapping, example: ExampleSpec, check: Check, decode: Decode | None
) -> list[str]:
    payload = _payload(mapping, example, decode)
    try:
        mapped = mapping.map(payload, example.meta)
    except GatewayError as exc:
        raise _ExampleError(f"mapping failed: {exc}") from exc
    messages: list[str] = []
    if len(mapped) != len(example.expect):
        messages.append(f"expected {len(example.expect)} record(s), the payload gave {len(mapped)}")
    for i, (record, expected) in enumerate(zip(mapped, example.expect, strict=False)):
        try:
            final, findings = check(record, example.meta)
        except GatewayError as exc:
            messages.append(f"record {i + 1}: the check failed: {exc}")
            continue
        messages.extend(f"record {i + 1} ({record.source_path or 'payload'}): {m}"
                        for m in compare(expected, final, findings))
    return messages


def compare(expected: ExpectedRecord, final: Mapping[str, Any], findings: list[Finding]) -> list[str]:
    """Differences between one expectation and one checked record, readable line by line."""
    messages: list[str] = []
    errors = [f for f in findings if f.is_error]
    if expected.errors is not None or expected.record is not None:
        messages.extend(_compare_findings("errors", expected.errors or [], errors))
    if expected.warnings is not None:
        warnings = [f for f in findings if not f.is_error]
        messages.extend(_compare_findings("warnings", expected.warnings, warnings))
    if expected.record is not None:
        actual = {k: v for k, v in final.items() if k not in GATEWAY_FIELDS}
        lines = diff_values(expected.record, actual)
        if lines:
            messages.append("record differs:\n" + "\n".join(f"    {line}" for line in lines))
    return messages


def _compare_findings(what: str, expected: list[ExpectedFinding], actual: list[Finding]) -> list[str]:
    want = {(e.code, e.field) for e in expected}
    got = {(f.code, f.field): f for f in actual}
    missing = sorted(want - set(got))
    extra = sorted(set(got) - want)
    one = what[:-1]
    lines = [f"expected {one} {code} on {field} was not raised" for code, field in missing]
    lines += [f"unexpected {one} {code} on {field}: {got[(code, field)].message_en}" for code, field in extra]
    return lines


def diff_values(expected: Any, actual: Any, path: str = "") -> list[str]:
    """Field-level differences: ``penalty_amount: expected '5000.00', got '5000'``."""
    if isinstance(expected, dict) and isinstance(actual, dict):
        lines: list[str] = []
        for key in expected:
            where = f"{path}.{key}" if path else str(key)
            if key not in actual:
                lines.append(f"{where}: expected {expected[key]!r}, missing")
            else:
                lines.extend(diff_values(expected[key], actual[key], where))
        for key in actual:
            if key not in expected:
                lines.append(f"{path}.{key}: unexpected {actual[key]!r}" if path else
                             f"{key}: unexpected {actual[key]!r}")
        return lines
    if isinstance(expected, list) and isinstance(actual, list) and len(expected) == len(actual):
        lines = []
        for i, (e, a) in enumerate(zip(expected, actual, strict=True)):
            lines.extend(diff_values(e, a, f"{path}[{i}]"))
        return lines
    if expected == actual and type(expected) is type(actual):
        return []
    return [f"{path or 'value'}: expected {expected!r}, got {actual!r}"]
