"""The connector plugin interface.

A connector speaks one protocol and turns what arrives into an ``Envelope``; it does no mapping.
It gets what it needs (its validated config, a ``publish`` callable) and holds no reference to the
runtime. ``publish`` returns only after the envelope's records are durably written (accepted to the
outbox, rejected to the ledger); a connector acknowledges its source only after that, and stops
acknowledging when ``publish`` raises ``StoreUnavailable``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import ClassVar, Protocol

from pydantic import BaseModel

from gateway.envelope import Envelope


@dataclass(frozen=True, slots=True)
class PublishReceipt:
    """What ingest did with one envelope: counts per outcome."""

    envelope_id: str
    accepted: int
    rejected: int
    duplicate: int


Publish = Callable[[Envelope], Awaitable[PublishReceipt]]


class Connector(Protocol):
    Config: ClassVar[type[BaseModel]]

    async def run(self, publish: Publish) -> None:
        """Take input until cancelled; publish each envelope and acknowledge only after it returns."""
