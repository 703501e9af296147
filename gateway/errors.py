"""The gateway's error types, typed by what the caller must do.

    GatewayError
    ├── ConfigError                 at start or on registration; lists every problem with its path
    ├── TransientError              retry; may carry retry_after_s
    │   ├── StoreUnavailable        the durable write failed: connectors must not acknowledge
    │   ├── SourceUnavailable       connector restarts with backoff
    │   └── TargetUnavailable       timeouts, resets, 5xx, 429
    └── PermanentError              retrying cannot help
        ├── MappingError            payload cannot become a standard record (field, rule, code)
        ├── PayloadError            the payload cannot be decoded at all (bad encoding, hostile XML...)
        └── TargetRejected          4xx other than 408/429, SOAP Fault, schema rejection

Plugins translate their library's exceptions into these at their edge, with ``raise ... from``.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime


class GatewayError(Exception):
    """Root of every error the gateway raises on purpose."""


class ConfigError(GatewayError):
    """Configuration is invalid. ``problems`` holds one line per problem, each starting with its path."""

    def __init__(self, problems: Sequence[str] | str) -> None:
        self.problems: list[str] = [problems] if isinstance(problems, str) else list(problems)
        super().__init__("; ".join(self.problems))


class TransientError(GatewayError):
    """Retrying later may succeed."""

    def __init__(self, message: str, *, retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


def retry_after_s(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or an HTTP date), for
    ``TransientError.retry_after_s``; None when absent or unreadable. Sources and targets share it."""
    if not value:
        return None
    text = value.strip()
    if text.isdigit():
        return float(text)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


class StoreUnavailable(TransientError):
    """A durable write failed; nothing may be acknowledged to the source."""


class SourceUnavailable(TransientError):
    """The source system cannot be reached."""


class TargetUnavailable(TransientError):
    """The target cannot be reached or asked us to come back later."""


class PermanentError(GatewayError):
    """Retrying cannot help."""


class MappingError(PermanentError):
    """A payload cannot become a standard record."""


class PayloadError(PermanentError):
    """A payload cannot be decoded (wrong encoding, malformed, hostile or oversized).

    ``code`` is a stable English code (e.g. ``PAYLOAD_TOO_LARGE``, ``XML_FORBIDDEN``, ``ENCODING``);
    ``location`` says where in the input the problem is, when known.
    """

    def __init__(self, code: str, message: str, *, location: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.location = location


class TargetRejected(PermanentError):
    """The target refused the request or a record's content."""

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.code = code
