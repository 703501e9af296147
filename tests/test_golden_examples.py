"""Every mapping in config/mappings loads and passes its golden examples, through the production
ingest path (mapping, gateway fields, validation, record id)."""

from __future__ import annotations

from functools import partial

import pytest

from connectors.codecs import decode
from gateway.ingest import Ingestor
from mapping.catalog import load_catalog
from mapping.examples import run_examples
from tests.conftest import MAPPINGS, SAMPLES

CATALOG = load_catalog(MAPPINGS)


def test_every_source_folder_with_samples_has_a_mapping() -> None:
    sources = {m.source for m in CATALOG.values()}
    assert sources == {p.name for p in SAMPLES.iterdir() if p.is_dir()}


@pytest.mark.parametrize("name", sorted(CATALOG))
def test_golden_examples_pass(name: str) -> None:
    mapping = CATALOG[name]
    assert mapping.examples, f"{name} has no golden examples"
    ingestor = Ingestor()
    failures = run_examples(mapping, partial(ingestor.check_mapped, mapping), decode=decode)
    assert [f"{f.example}: {f.message}" for f in failures] == []
