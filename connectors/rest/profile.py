"""REST source profiles: how a pulled REST API pages, authenticates and reports errors, as data.

A profile names the paging style and its parameter names, where a page keeps its items, cursor
and totals, how tokens are obtained and sent, and how an error hidden in an HTTP 200 body reads.
A new REST source is a new profile (built in here, or inline in the connector's options), not code.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class AuthProfile(_Strict):
    """How the source authenticates us.

    ``oauth2_client_credentials``: form POST (id/secret in the form, or HTTP Basic when
    ``basic_auth``). ``token_endpoint``: a JSON POST of ``{id_field: id, secret_field: secret}``.
    ``api_key``: a static key in ``header``. Tokens are read at ``token_path`` / ``expires_path``
    (dotted) and sent as ``header: prefix + token``.
    """

    kind: Literal["oauth2_client_credentials", "token_endpoint", "api_key", "none"]
    token_url_path: str = "/oauth2/token"  # noqa: S105 - a URL path, not a secret
    scope: str | None = None
    basic_auth: bool = False
    id_field: str = "client_id"
    secret_field: str = "client_secret"  # noqa: S105 - a form field name
    token_path: str = "access_token"  # noqa: S105 - a JSON path
    expires_path: str = "expires_in"
    header: str = "Authorization"
    prefix: str = "Bearer "
    refresh_before_s: float = Field(default=300.0, ge=0)


class PagingProfile(_Strict):
    """``cursor``: keyset cursor (``next_cursor_path`` on every page, ``has_more_path``), first sync
    and restarts by ``since_param``; ``page_number``: pages over ``since_param``, the last page told
    by ``pages_path`` (page >= pages) or by ``total_path`` (page * size >= total)."""

    style: Literal["cursor", "page_number"]
    since_param: str
    since_format: str = Field(default="iso", description="'iso', or a strftime pattern in source_tz")
    source_tz: str = Field(default="+08:00", description="offset of naive source timestamps")
    size_param: str
    page_size: int = Field(default=100, ge=1)
    max_page_size: int = Field(default=500, ge=1)
    cursor_param: str = "cursor"
    next_cursor_path: str = "nextCursor"
    has_more_path: str = "hasMore"
    cursor_expired_status: int = 410
    page_param: str = "page"
    first_page: int = 1
    pages_path: str | None = None
    total_path: str | None = None
    overlap_s: float = Field(default=60.0, ge=0, description="re-read window before the cursor time")
    max_since_age_s: float | None = Field(default=None, gt=0, description=(
        "how far back the source lets since_param go (12315: 31 days); an older start is moved up to it, "
        "with a warning, rather than refused for ever"))


class RecordsProfile(_Strict):
    """Where a page keeps its items, and each item's identity and change time (for dedupe)."""

    items_path: str
    id_field: str
    updated_field: str
    updated_format: str = Field(default="iso", description="'iso', or a strftime pattern in source_tz")
    items_required: bool = Field(default=False, description=(
        "every page has a list at items_path (eco-rest's PenaltyPage): a 200 without one is not a page "
        "(an error body, a proxy's JSON) and is retried, not read as an empty last page"))


class BodyStatusProfile(_Strict):
    """An error carried in a 200 body: ``path`` holds the source's code; codes in ``ok`` are success,
    others are treated like the HTTP status ``as_status`` maps them to (500 when unmapped)."""

    path: str = "code"
    ok: tuple[str, ...] = ("200",)
    as_status: dict[str, int] = Field(default_factory=dict)
    retry_after_s: dict[str, float] = Field(default_factory=dict)


class Resource(_Strict):
    """One listing endpoint; ``variant`` picks the mapping when a connector reads several."""

    name: str
    path: str
    variant: str = "default"


class RestProfile(_Strict):
    auth: AuthProfile
    paging: PagingProfile
    records: RecordsProfile
    resources: tuple[Resource, ...] = Field(min_length=1)
    body_status: BodyStatusProfile | None = None
    rate_per_s: float = Field(default=5.0, gt=0)
    timeout_s: float = Field(default=15.0, gt=0)
    max_body_bytes: int = Field(default=16 * 1024 * 1024, ge=1024,
                                description="an answer body larger than this (after decompression) is refused")
    pii_paths: tuple[str, ...] = Field(
        default=(), description="item paths holding personal data: never logged (documentation and checks)")


_BUILTIN: dict[str, dict[str, Any]] = {
    "eco-rest": {
        "auth": {"kind": "oauth2_client_credentials", "token_url_path": "/oauth2/token", "scope": "penalty.read"},
        "paging": {"style": "cursor", "since_param": "updatedSince", "size_param": "limit", "page_size": 100,
                   "max_page_size": 500, "overlap_s": 300},
        "records": {"items_path": "items", "id_field": "id", "updated_field": "updatedAt", "items_required": True},
        "resources": [{"name": "penalties", "path": "/api/v2/penalties"}],
        "rate_per_s": 10,
    },
    "hotline-12315": {
        "auth": {"kind": "token_endpoint", "token_url_path": "/api/v1/auth/token", "id_field": "appKey",
                 "secret_field": "appSecret", "token_path": "data.token", "expires_path": "data.expiresIn",
                 "header": "X-Access-Token", "prefix": ""},
        "paging": {"style": "page_number", "since_param": "modifiedSince", "since_format": "%Y-%m-%d %H:%M:%S",
                   "size_param": "pageSize", "page_size": 50, "max_page_size": 100, "page_param": "page",
                   "pages_path": "data.pages", "overlap_s": 60, "max_since_age_s": 31 * 86400 - 3600},
        "records": {"items_path": "data.list", "id_field": "caseNo", "updated_field": "modifiedTime",
                    "updated_format": "%Y-%m-%d %H:%M:%S"},
        "resources": [{"name": "cases", "path": "/api/v1/cases"}],
        "body_status": {"path": "code", "ok": ["0"], "as_status": {"40101": 401, "42900": 429, "40001": 400}},
        "rate_per_s": 5,
        "pii_paths": ["complainant"],
    },
    "credit-v2": {
        "auth": {"kind": "api_key", "header": "X-Api-Key", "prefix": ""},
        "paging": {"style": "page_number", "since_param": "startTime", "since_format": "%Y-%m-%d %H:%M:%S",
                   "size_param": "pageSize", "page_size": 100, "max_page_size": 500, "page_param": "pageNum",
                   "total_path": "total", "overlap_s": 60},
        "records": {"items_path": "rows", "id_field": "ID", "updated_field": "GXSJ",
                    "updated_format": "%Y-%m-%d %H:%M:%S"},
        "resources": [{"name": "xk", "path": "/sgs/api/v2/xk", "variant": "license-v2"},
                      {"name": "cf", "path": "/sgs/api/v2/cf", "variant": "penalty-v2"}],
        "body_status": {"path": "code", "ok": ["200"], "as_status": {"400": 400, "401": 403, "429": 429, "500": 500},
                        "retry_after_s": {"429": 60}},
        "rate_per_s": 5,
    },
}


def builtin_profile_names() -> list[str]:
    return sorted(_BUILTIN)


def builtin_profile(name: str) -> RestProfile:
    """A built-in profile by name; KeyError when unknown (the connector reports it as config)."""
    return RestProfile.model_validate(_BUILTIN[name])


def get_path(tree: Any, dotted: str) -> Any:
    """The value at a dotted path of a decoded JSON tree, or None when any step is missing."""
    node = tree
    for part in dotted.split("."):
        if not isinstance(node, dict):
            return None
        node = node.get(part)
    return node
