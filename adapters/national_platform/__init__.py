"""The national 互联网+监管 platform adapter (``sources/national-platform/``)."""

from __future__ import annotations

from adapters.national_platform.adapter import Config, NationalPlatformAdapter, NationalPlatformConfig

__all__ = ["Config", "NationalPlatformAdapter", "NationalPlatformConfig"]
