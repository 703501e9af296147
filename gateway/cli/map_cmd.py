"""``sgw map``: dry-run files through a mapping, printing one JSON object per record."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import typer

from connectors.codecs import decode
from connectors.file_meta import file_meta
from gateway.envelope import Envelope
from gateway.errors import ConfigError, PayloadError
from gateway.ingest import Ingestor
from gateway.memory_index import MemoryRecordIndex
from mapping.catalog import load_catalog
from mapping.compiler import CompiledMapping, load_mapping

DRY_RUN_CONNECTOR = "dry-run"


def resolve_mapping(ref: str, mappings_dir: Path) -> CompiledMapping:
    path = Path(ref)
    if path.suffix in {".yaml", ".yml"} and path.exists():
        return load_mapping(path)
    catalog = load_catalog(mappings_dir)
    if ref not in catalog:
        import difflib

        hint = difflib.get_close_matches(ref, catalog, n=1)
        raise ConfigError(f"--mapping: unknown mapping {ref!r}" + (f"; did you mean {hint[0]!r}?" if hint else ""))
    return catalog[ref]


def list_mappings(mappings_dir: Path, *, as_json: bool) -> None:
    rows = [
        {"name": m.name, "version": m.version, "source": m.source, "format": m.format, "kind": m.kind,
         "standard_version": m.standard_version, "description": m.description}
        for m in sorted(load_catalog(mappings_dir).values(), key=lambda m: m.name)
    ]
    if as_json:
        typer.echo(json.dumps(rows, ensure_ascii=False, indent=2))
        return
    for row in rows:
        typer.echo(f"{row['name']:<40} {row['source']:<20} {row['format']:<8} {row['kind']}")


def _parse_meta(pairs: list[str]) -> dict[str, Any]:
    meta: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ConfigError(f"--meta: expected KEY=VALUE, got {pair!r}")
        meta[key] = value
    return meta


def _file_failure(path: Path, error: PayloadError) -> dict[str, Any]:
    return {
        "status": "rejected",
        "file": path.name,
        "record": None,
        "errors": [{
            "code": error.code, "field": None, "location": error.location or path.name,
            "message_zh": f"文件无法解析：{error}", "message_en": f"the file cannot be decoded: {error}",
        }],
    }


def map_files(ref: str, files: list[Path], *, mappings_dir: Path, meta_pairs: list[str]) -> int:
    mapping = resolve_mapping(ref, mappings_dir)
    extra = _parse_meta(meta_pairs)
    ingestor = Ingestor()
    index = MemoryRecordIndex()
    any_rejected = False
    for path in files:
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise ConfigError(f"{path}: cannot read: {exc.strerror}") from exc
        meta = {**file_meta(path), **extra}
        try:
            payload = decode(mapping.format, data)
        except PayloadError as exc:
            any_rejected = True
            typer.echo(json.dumps(_file_failure(path, exc), ensure_ascii=False))
            continue
        envelope = Envelope(connector=DRY_RUN_CONNECTOR, payload=payload, received_at=datetime.now(UTC), meta=meta)
        for outcome in ingestor.evaluate(mapping, envelope, index):
            index.remember(outcome)
            any_rejected |= outcome.status == "rejected"
            line = {"status": outcome.status, "file": path.name, **outcome.as_dict()}
            typer.echo(json.dumps(line, ensure_ascii=False))
    return 1 if any_rejected else 0
