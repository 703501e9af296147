"""The provincial public credit platform adapter: 双公示 ExchangeMessage XML (``sources/credit-publication/``)."""

from __future__ import annotations

from adapters.credit_exchange.adapter import Config, CreditExchangeAdapter, CreditExchangeConfig

__all__ = ["Config", "CreditExchangeAdapter", "CreditExchangeConfig"]
