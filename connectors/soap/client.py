"""The blocking zeep side: the WSDL builds and secures each request; answers come back raw.

zeep is synchronous: every method here runs in a worker thread (``asyncio.to_thread``). Answers
are taken raw (``Settings(raw_response=True)``) and decoded by ``connectors.codecs`` ("soap"), so a
mapping sees the same tree whether a page came from this connector or from a sample file. An answer
is read as a stream and refused as soon as it passes ``max_response_bytes`` (the codec's size check
comes after the whole body is in memory: too late for a runaway answer), or when it is not complete
within ``answer_timeout_s`` (``timeout_s`` bounds each wait for more of it, not the whole).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

import requests
import zeep
from zeep.transports import Transport
from zeep.wsse.username import UsernameToken

from connectors.codecs import DecodeLimits
from connectors.codecs.limits import check_size
from gateway.errors import ConfigError, SourceUnavailable

from .config import SoapPollConfig
from .faults import translating_transport_errors
from .window import Window

log = logging.getLogger(__name__)


CHUNK_BYTES = 64 * 1024


@dataclass(frozen=True, slots=True)
class RawAnswer:
    status: int
    content: bytes


class QuietTransport(Transport):
    """zeep's transport without its debug log of each message (it holds the password), answering
    a ``RawAnswer`` read up to ``max_response_bytes`` (zeep passes it through: ``raw_response``).
    The WSDL and the schemas it imports are read under the same limits: the source serves them too,
    and zeep would otherwise hold a runaway document whole."""

    def __init__(self, *, max_response_bytes: int, answer_timeout_s: float, **options: Any) -> None:
        super().__init__(**options)  # type: ignore[no-untyped-call]
        self.max_response_bytes = max_response_bytes
        self.answer_timeout_s = answer_timeout_s

    def post(self, address: str, message: bytes, headers: dict[str, str]) -> RawAnswer:
        deadline = time.monotonic() + self.answer_timeout_s
        with self.session.post(address, data=message, headers=headers, timeout=self.operation_timeout,
                               stream=True) as response:
            content = read_capped(response, self.max_response_bytes, deadline=deadline)
            return RawAnswer(status=response.status_code, content=content)

    def _load_remote_data(self, url: str) -> bytes:
        deadline = time.monotonic() + self.answer_timeout_s
        with self.session.get(url, timeout=self.load_timeout, stream=True) as response:
            response.raise_for_status()
            return read_capped(response, self.max_response_bytes, deadline=deadline)


def read_capped(response: requests.Response, max_bytes: int, *, deadline: float | None = None) -> bytes:
    """The (decoded) body, or ``PAYLOAD_TOO_LARGE`` as soon as it is longer than ``max_bytes``, or
    ``SourceUnavailable`` (transient) once ``deadline`` (``time.monotonic``) passes before its end.

    Counted after content decoding, so a small gzip body that inflates past the limit is refused too.
    A non-success answer that is too long is cut instead: its status says what happened. Read with
    ``read1`` (what has arrived, up to a chunk), so that a trickle is timed as it comes, not per
    full chunk.
    """
    limits = DecodeLimits(max_bytes=max_bytes)
    declared = response.headers.get("Content-Length", "")
    if response.status_code == 200 and declared.isdigit():
        check_size(int(declared), limits, "the answer (Content-Length)")
    body = bytearray()
    raw = response.raw
    while chunk := raw.read1(CHUNK_BYTES, decode_content=True):
        body += chunk
        if len(body) > max_bytes:
            if response.status_code != 200:
                return b""
            check_size(len(body), limits, "the answer (read so far)")
        if deadline is not None and time.monotonic() > deadline:
            raise SourceUnavailable(f"the answer was not complete in time ({len(body)} bytes so far)"
                                    "（应答超时未完成）")
    return bytes(body)


class SoapClient:
    """One source account: its WSDL-driven service proxy and HTTP session."""

    def __init__(self, config: SoapPollConfig) -> None:
        self._config = config
        self._session: requests.Session | None = None
        self._service: Any = None

    def load(self) -> None:
        """Fetch and compile the WSDL; check the configured operations exist in it."""
        config = self._config
        session = requests.Session()
        session.verify = str(config.ca_bundle) if config.ca_bundle else True
        transport = QuietTransport(session=session, timeout=config.timeout_s, operation_timeout=config.timeout_s,
                                   max_response_bytes=config.max_response_bytes,
                                   answer_timeout_s=config.answer_timeout_s)
        wsse = UsernameToken(config.username, config.password.get_secret_value())  # type: ignore[no-untyped-call]
        with translating_transport_errors(f"WSDL {config.wsdl}"):
            client = zeep.Client(  # type: ignore[no-untyped-call]
                config.wsdl, wsse=wsse, transport=transport, settings=zeep.Settings(raw_response=True))
            service = client.service if config.endpoint is None else _service_at(client, config.endpoint)
        missing = [op.name for op in config.operations if op.name not in dict(service)]
        if missing:
            session.close()
            offered = ", ".join(dict(service))
            raise ConfigError(f"operations: not in the WSDL: {', '.join(missing)}; it offers {offered}")
        self._session, self._service = session, service

    def query(self, operation: str, window: Window, page_no: int, page_size: int) -> RawAnswer:
        """One page of one operation, as the HTTP status and body the source answered."""
        if self._service is None:
            raise RuntimeError("SoapClient.load() first")
        with translating_transport_errors(f"{operation} p{page_no}"):
            answer: RawAnswer = self._service[operation](
                startTime=window.start_text, endTime=window.end_text, pageNo=page_no, pageSize=page_size)
            return answer

    def close(self) -> None:
        if self._session is not None:
            self._session.close()
        self._session, self._service = None, None


def _service_at(client: zeep.Client, endpoint: str) -> Any:
    """The WSDL's first port bound at another address (the WSDL often names an internal host)."""
    service = next(iter(client.wsdl.services.values()))
    port = next(iter(service.ports.values()))
    return client.create_service(port.binding.name, endpoint)  # type: ignore[no-untyped-call]
