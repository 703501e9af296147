"""Options of the SOAP poll connector, validated once with their paths."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Self

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from .window import BEIJING

MAX_WINDOW_S = 7 * 24 * 3600  # the source refuses windows over 7 days (errorCode 2001)


class SoapOperation(BaseModel):
    """One query operation of the WSDL and the mapping variant of its records."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$", description="Operation name in the WSDL.")
    variant: str = Field(min_length=1, description="meta.variant: selects the connector's mapping.")


class SoapPollConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    wsdl: str = Field(min_length=1, description="URL (http, https, file) or path of the service's WSDL.")
    endpoint: str | None = Field(default=None, description="Overrides the WSDL's soap:address.")
    username: str = Field(min_length=1)
    password: SecretStr
    ca_bundle: Path | None = Field(default=None, description="CA bundle that signs the source's certificate.")
    operations: tuple[SoapOperation, ...] = Field(min_length=1)
    page_size: int = Field(default=200, ge=1, le=200)
    window_s: int = Field(default=24 * 3600, ge=60, le=MAX_WINDOW_S)
    overlap_s: int = Field(default=300, ge=0)
    start_time: datetime = Field(description="First window's start when no cursor is stored (naive = Beijing).")
    poll_interval_s: float = Field(default=300.0, gt=0)
    max_calls_per_min: int = Field(default=60, ge=1)
    max_concurrency: int = Field(default=2, ge=1)
    timeout_s: float = Field(default=60.0, gt=0, description="Connecting, and each wait for more of an answer.")
    answer_timeout_s: float = Field(default=300.0, gt=0, description=(
        "A whole answer, however it trickles in: a source sending a byte at a time would hold the "
        "connector for ever under timeout_s alone."))
    retry_backoff_s: float = Field(default=5.0, gt=0, description="First wait after a transient fault.")
    max_backoff_s: float = Field(default=600.0, gt=0)
    rate_limited_backoff_s: float = Field(default=60.0, ge=60, description="Wait after errorCode 3001.")
    max_response_bytes: int = Field(default=20 * 1024 * 1024, ge=1024, description=(
        "Largest answer, WSDL or imported schema read from the source; refused while it streams."))

    @field_validator("start_time")
    @classmethod
    def _beijing_when_naive(cls, value: datetime) -> datetime:
        return value.replace(tzinfo=BEIJING) if value.tzinfo is None else value

    @model_validator(mode="after")
    def _coherent(self) -> Self:
        if self.overlap_s >= self.window_s:
            raise ValueError("overlap_s must be shorter than window_s, or the cursor never advances")
        names = [op.name for op in self.operations]
        if len(set(names)) != len(names):
            raise ValueError("operations: each operation may be listed once (one cursor per operation)")
        return self
