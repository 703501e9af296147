"""``sgw check``: the config, every plugin's options, every mapping and its golden examples."""

from __future__ import annotations

from functools import partial
from pathlib import Path

from connectors.codecs import decode
from gateway.assembly import assemble
from gateway.ingest import Ingestor
from gateway.settings import load_settings
from mapping.examples import run_examples


def check(config: Path | None) -> list[str]:
    """Every problem found, one line each; ConfigError for config that cannot even be assembled."""
    settings = load_settings(config)
    assembly = assemble(settings)
    ingestor = Ingestor(uscc_exceptions=frozenset(settings.uscc_exceptions))
    problems: list[str] = []
    for _name, mapping in sorted(assembly.catalog.items()):
        failures = run_examples(mapping, partial(ingestor.check_mapped, mapping), decode=decode)
        problems.extend(f"{f.mapping}: example {f.example!r}: {f.message}" for f in failures)
    return problems
