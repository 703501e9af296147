"""Batch-file exchange (格式文件导入): county bureaus' CSV/XLSX/XML files with ``.ok`` markers."""

from __future__ import annotations

from connectors.batch_files.connector import BatchFilesConnector

__all__ = ["BatchFilesConnector"]
