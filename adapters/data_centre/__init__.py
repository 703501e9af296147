"""The provincial 监管数据中心 前置库 adapter (``sources/data-centre/``)."""

from __future__ import annotations

from adapters.data_centre.adapter import Config, DataCentreAdapter, DataCentreConfig
from adapters.data_centre.sequence import BatchSequence, TableBatchSequence, format_batch
from adapters.data_centre.tables import ExchangeTables, exchange_tables

__all__ = [
    "BatchSequence",
    "Config",
    "DataCentreAdapter",
    "DataCentreConfig",
    "ExchangeTables",
    "TableBatchSequence",
    "exchange_tables",
    "format_batch",
]
