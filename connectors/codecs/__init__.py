"""Payload decoders: bytes of a source format -> the JSON-like tree of docs/codecs.md.

Every decoder enforces ``DecodeLimits`` before it parses and raises ``PayloadError`` with a stable
code. ``decode`` dispatches by format name; the streaming readers (``iter_csv_rows``,
``iter_xlsx_rows``) serve the batch-file connector, ``parse_fault`` the SOAP connector, and
``encode_hj212`` simulators and tests.
"""

from __future__ import annotations

import dataclasses
import importlib
from typing import Any

from gateway.errors import ConfigError

from .csv_codec import iter_csv_rows
from .hj212 import encode_hj212
from .limits import DEFAULT_LIMITS, DecodeLimits
from .soap import SoapFault, SoapFaultError, parse_fault
from .text_encoding import detect_encoding, resolve_codec
from .xlsx_codec import cell_text, iter_xlsx_rows

# format -> module holding its ``decode(data, *, limits, encoding)``; imported on first use.
_MODULES = {
    "json": "json_codec",
    "csv": "csv_codec",
    "xlsx": "xlsx_codec",
    "xml": "xml_codec",
    "soap": "soap",
    "hj212": "hj212",
    "gb28181": "gb28181",
}
FORMATS: tuple[str, ...] = tuple(_MODULES)


def decode(
    format: str,
    data: bytes,
    *,
    encoding: str | None = None,
    limits: DecodeLimits | None = None,
    **overrides: int,
) -> Any:
    """Decode ``data`` of ``format`` (one of ``FORMATS``) into its tree.

    ``encoding`` applies to csv, xml, soap and gb28181 (detected or declared otherwise);
    ``limits`` and keyword ``overrides`` of ``DecodeLimits`` fields (``max_bytes=...``) bound the work.
    Unknown formats or limit names raise ``ConfigError``; payload problems ``PayloadError``.
    """
    module_name = _MODULES.get(format)
    if module_name is None:
        raise ConfigError(f"format: unknown payload format {format!r}; expected one of {', '.join(FORMATS)}")
    effective = _limits(limits, overrides)
    module = importlib.import_module(f"{__name__}.{module_name}")
    return module.decode(bytes(data), limits=effective, encoding=encoding)


def _limits(limits: DecodeLimits | None, overrides: dict[str, int]) -> DecodeLimits:
    base = limits or DEFAULT_LIMITS
    if not overrides:
        return base
    known = {f.name for f in dataclasses.fields(DecodeLimits)}
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise ConfigError(
            f"limits: unknown decode limit(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}"
        )
    return dataclasses.replace(base, **overrides)


__all__ = [
    "DEFAULT_LIMITS",
    "FORMATS",
    "DecodeLimits",
    "SoapFault",
    "SoapFaultError",
    "cell_text",
    "decode",
    "detect_encoding",
    "encode_hj212",
    "iter_csv_rows",
    "iter_xlsx_rows",
    "parse_fault",
    "resolve_codec",
]
