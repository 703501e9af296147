"""SOAP Faults and transport errors -> the gateway's error types (what the supervisor must do).

The ministry contract's ``detail/ServiceFault/errorCode`` decides: 1001 (credentials) and 1002
(account locked) and 2001 (bad parameters) cannot be cured by retrying — retrying bad credentials
would lock the account — so they stop the connector; 3001 (rate limit) and 5000 (internal) are
transient, as are proxies' 502/503 pages and network failures.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import requests
import zeep.exceptions

from connectors.codecs import DecodeLimits, SoapFault, SoapFaultError, decode
from gateway.errors import ConfigError, PayloadError, PermanentError, SourceUnavailable

PERMANENT_CODES: dict[str, str] = {
    "1001": "接入账号或密码错误，连接器已停止，请核对账号密码",
    "1002": "接入账号已锁定，连接器已停止，请联系对方解锁",
    "2001": "查询参数错误，连接器已停止，请检查配置",
}
RATE_LIMITED_CODE = "3001"
CALLER_FAULT_CODES = frozenset({"Client", "Sender"})  # SOAP 1.1 / SOAP 1.2: the request itself is refused


def fault_error(fault: SoapFault, *, where: str, rate_limited_backoff_s: float) -> Exception:
    """The gateway error for a Fault the source answered with."""
    text = f"{where}: {fault.describe()}"
    code = fault.error_code or ""
    if code in PERMANENT_CODES:
        return PermanentError(f"{text}（{PERMANENT_CODES[code]}）")
    if fault.faultcode.endswith("FailedAuthentication"):
        return PermanentError(f"{text}（{PERMANENT_CODES['1001']}）")
    if code == RATE_LIMITED_CODE:
        return SourceUnavailable(f"{text}（请求过于频繁，稍后重试）", retry_after_s=rate_limited_backoff_s)
    if not code and fault.faultcode.rpartition(":")[2] in CALLER_FAULT_CODES:
        return PermanentError(f"{text}（对方拒绝请求，连接器已停止）")
    return SourceUnavailable(f"{text}（对方系统暂不可用，稍后重试）")


def decode_answer(status: int, content: bytes, *, where: str, limits: DecodeLimits,
                  rate_limited_backoff_s: float) -> Any:
    """The decoded ``soap`` tree of a successful answer; otherwise raise the gateway error."""
    try:
        tree = decode("soap", content, limits=limits)
    except SoapFaultError as exc:
        raise fault_error(exc.fault, where=where, rate_limited_backoff_s=rate_limited_backoff_s) from exc
    except PayloadError as exc:
        if status == 200:
            raise  # the source answered success with a body we refuse: a person must look at it
        raise http_error(status, where) from exc
    if status != 200:
        raise http_error(status, where)
    return tree


def http_error(status: int, where: str) -> Exception:
    """An HTTP answer that carries no SOAP Fault (a proxy's error page, maintenance)."""
    if status in (401, 403):
        return PermanentError(f"{where}: HTTP {status}（对方拒绝访问，连接器已停止）")
    if status == 404:
        return ConfigError(f"{where}: HTTP 404, check endpoint（服务地址不存在）")
    return SourceUnavailable(f"{where}: HTTP {status}（对方系统暂不可用，稍后重试）")


@contextmanager
def translating_transport_errors(where: str) -> Iterator[None]:
    """requests and zeep exceptions -> gateway errors, at the edge."""
    try:
        yield
    except requests.exceptions.SSLError as exc:
        raise PermanentError(f"{where}: TLS verification failed; check ca_bundle（证书校验失败）") from exc
    except requests.exceptions.HTTPError as exc:
        status = exc.response.status_code if exc.response is not None else 0
        raise http_error(status, where) from exc
    except requests.exceptions.RequestException as exc:
        raise SourceUnavailable(f"{where}: {type(exc).__name__}（无法连接对方系统）") from exc
    except zeep.exceptions.TransportError as exc:
        raise http_error(exc.status_code, where) from exc
    except (zeep.exceptions.ValidationError, zeep.exceptions.LookupError) as exc:
        raise ConfigError(f"{where}: {exc}") from exc
    except zeep.exceptions.Error as exc:
        raise ConfigError(f"{where}: the WSDL cannot be used: {exc}（WSDL 无法解析）") from exc
    except OSError as exc:  # a WSDL path that cannot be read
        raise ConfigError(f"{where}: {exc}") from exc
