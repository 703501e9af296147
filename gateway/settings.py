"""Runtime configuration: one YAML file plus environment overrides, validated once and strictly.

Every problem is reported with its path (``connectors[2].mapping``). Secrets are ``SecretStr``
and never printed. Environment variables ``SGW_<SECTION>__<KEY>`` override the file (e.g.
``SGW_STORES__DATABASE_URL``), and ``${NAME}`` in a value of the file is the variable NAME (for
settings of list entries: adapters, connectors), so a deployment keeps secrets out of the file.
"""

from __future__ import annotations

import os
import re
from datetime import date
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from gateway.errors import ConfigError

ID_PATTERN = r"^[a-z0-9][a-z0-9_.-]{0,63}$"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class StoresSettings(_Strict):
    database_url: str = Field(
        default="sqlite:///var/sgw/gateway.sqlite",
        description="SQLAlchemy URL of the gateway's own store (rejections, journeys, records, outbox).",
    )
    redis_url: SecretStr | None = Field(
        default=None, description="redis://... : the outbox on Redis Streams (Redis with AOF persistence); "
        "unset: the outbox is in the database above.")
    redis_prefix: str = Field(default="sgw", pattern=r"^[A-Za-z0-9_.-]{1,64}$",
                              description="Prefix of every Redis key of this gateway.")


class DeliverySettings(_Strict):
    max_attempts: int = Field(default=10, ge=1, description="Attempts before a record becomes a dead letter.")
    max_age_s: float | None = Field(default=7 * 24 * 3600, gt=0,
                                    description="Age in the outbox after which a failing record is dead-lettered.")
    first_backoff_s: float = Field(default=1.0, gt=0, le=3600)
    max_backoff_s: float = Field(default=300.0, gt=0, le=24 * 3600)
    lease_s: float = Field(default=60.0, gt=0, le=3600,
                           description="A claimed batch not settled by then is reclaimed (its worker died).")
    linger_s: float = Field(default=0.0, ge=0, le=5, description="Wait this long after news to fill a batch.")
    circuit_failures: int = Field(default=5, ge=1, description="Failed batches in a row that open the circuit.")
    circuit_open_s: float = Field(default=5.0, gt=0, le=3600)
    circuit_max_open_s: float = Field(default=300.0, gt=0, le=24 * 3600)
    shutdown_grace_s: float = Field(default=10.0, ge=0, le=300,
                                    description="At shutdown, time for the batches in hand to finish.")
    relay_interval_s: float = Field(default=2.0, gt=0, le=60,
                                    description="With Redis: how often committed rows are handed on again.")


class CalendarSettings(_Strict):
    extra_holidays: tuple[date, ...] = ()
    extra_workdays: tuple[date, ...] = ()


class ApiTokenSettings(_Strict):
    """A named bearer token of one role, stored as its digest (``sgw keys new`` prints both)."""

    name: str = Field(pattern=ID_PATTERN)
    role: Literal["admin", "integrator", "ops", "department", "viewer"]
    token_hash: str = Field(pattern=r"^sha256:[0-9a-f]{64}$")
    department: str | None = Field(default=None, pattern=ID_PATTERN)

    @model_validator(mode="after")
    def _department_role(self) -> ApiTokenSettings:
        if (self.role == "department") != (self.department is not None):
            raise ValueError("a department token names its department, and only a department token does")
        return self


class ApiSettings(_Strict):
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=1, le=65535)
    max_body_bytes: int = Field(default=5 * 1024 * 1024, ge=1024)
    max_records_per_request: int = Field(default=1000, ge=1)
    admin_token: SecretStr | None = Field(
        default=None, description="Bearer token of the ops routes (dead letters, rejections, journeys); "
        "unset: those routes answer 401.")
    tokens: tuple[ApiTokenSettings, ...] = Field(
        default=(), description="Named role tokens (admin, integrator, ops, department, viewer), as digests.")


class DepartmentSettings(_Strict):
    code: str = Field(pattern=ID_PATTERN)
    name: str
    provider_uscc: str | None = None
    admin_division_code: str | None = None
    api_key_hashes: tuple[str, ...] = Field(
        default=(), description="'sha256:<hex>' digests of the department's API keys (never the keys)."
    )

    @field_validator("api_key_hashes")
    @classmethod
    def _hash_form(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for item in value:
            if not re.fullmatch(r"sha256:[0-9a-f]{64}", item):
                raise ValueError("each key hash must be 'sha256:' + 64 lower-case hex digits (use `sgw keys new`)")
        return value


class ConnectorSettings(_Strict):
    id: str = Field(pattern=ID_PATTERN)
    type: str
    mapping: str | None = None
    mappings: dict[str, str] = Field(
        default_factory=dict, description="For connectors whose payloads need several mappings: variant -> mapping."
    )
    department: str | None = None
    enabled: bool = True
    meta: dict[str, Any] = Field(default_factory=dict, description="Constant envelope metadata for the mapping.")
    options: dict[str, Any] = Field(default_factory=dict)


class AdapterSettings(_Strict):
    id: str = Field(pattern=ID_PATTERN)
    type: str
    enabled: bool = True
    batch_size: int = Field(default=200, ge=1, le=10_000)
    max_wait_s: float = Field(default=0.5, gt=0, le=60, description=(
        "How often an idle worker looks for retries come due; news of queued records wakes it at once "
        "(from other instances too, over Redis)."))
    options: dict[str, Any] = Field(default_factory=dict)


class RouteSettings(_Strict):
    kinds: tuple[str, ...] = Field(description="Record kinds, or '*' for all.")
    adapters: tuple[str, ...]


class IngestSettings(_Strict):
    map_processes: int = Field(default=0, ge=0, le=64, description=(
        "Worker processes that map and check envelopes of many records (batch-file chunks, pages) "
        "beside the rest of ingest, on other cores; 0: in the gateway's process. About the cores "
        "left once delivery has its own: 1 on a 2-core host."))
    map_min_records: int = Field(default=50, ge=1, le=100_000, description=(
        "Envelopes with fewer records are mapped in process (a trip to a worker costs ~1 ms)."))


class LoggingSettings(_Strict):
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    json_format: bool = True


Role = Literal["ingest", "delivery"]


class Settings(_Strict):
    mappings_dir: Path = Path("config/mappings")
    stores: StoresSettings = StoresSettings()
    calendar: CalendarSettings = CalendarSettings()
    api: ApiSettings = ApiSettings()
    delivery: DeliverySettings = DeliverySettings()
    ingest: IngestSettings = IngestSettings()
    logging: LoggingSettings = LoggingSettings()
    uscc_exceptions: tuple[str, ...] = ()
    departments: tuple[DepartmentSettings, ...] = ()
    connectors: tuple[ConnectorSettings, ...] = ()
    adapters: tuple[AdapterSettings, ...] = ()
    routing: tuple[RouteSettings, ...] = ()
    roles: tuple[Role, ...] = Field(default=("ingest", "delivery"), min_length=1, description=(
        "What this instance runs: 'ingest' (connectors) and/or 'delivery' (the adapters' workers and "
        "target feedback). Instances of one role scale apart: e.g. two ingest instances sharing MQTT "
        "and a delivery instance, all on one Redis outbox. A comma-separated string is accepted "
        "(SGW_ROLES=delivery)."))

    instance_id: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_.-]{1,40}$", description=(
        "This instance's name, stable across its restarts (default: the host name; set it when several "
        "instances run on one host: SGW_INSTANCE_ID). An MQTT connector with a share_group appends it to "
        "its client id, so instances sharing the registry's settings keep sessions of their own."))

    @field_validator("roles", mode="before")
    @classmethod
    def _roles_from_text(cls, value: Any) -> Any:
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value

    @model_validator(mode="after")
    def _references(self) -> Settings:
        problems: list[str] = []
        departments = {d.code for d in self.departments}
        adapters = {a.id for a in self.adapters}
        for name, items in (("departments", [d.code for d in self.departments]),
                            ("connectors", [c.id for c in self.connectors]),
                            ("adapters", [a.id for a in self.adapters])):
            seen: set[str] = set()
            for i, item in enumerate(items):
                if item in seen:
                    problems.append(f"{name}[{i}]: duplicate id {item!r}")
                seen.add(item)
        for i, connector in enumerate(self.connectors):
            if connector.department is not None and connector.department not in departments:
                problems.append(f"connectors[{i}].department: unknown department {connector.department!r}")
        for i, route in enumerate(self.routing):
            for j, adapter in enumerate(route.adapters):
                if adapter not in adapters:
                    problems.append(f"routing[{i}].adapters[{j}]: unknown adapter {adapter!r}")
        if problems:
            raise ValueError("\n".join(problems))
        return self

    def adapters_for(self, kind: str) -> tuple[str, ...]:
        """The enabled adapters that route records of ``kind``, in configuration order."""
        enabled = {a.id for a in self.adapters if a.enabled}
        out: list[str] = []
        for route in self.routing:
            if "*" in route.kinds or kind in route.kinds:
                out.extend(a for a in route.adapters if a in enabled and a not in out)
        return tuple(out)


def with_roles(settings: Settings, roles: tuple[str, ...]) -> Settings:
    """``settings`` running only ``roles`` (from the command line), validated as the file's would be."""
    try:
        checked = Settings.model_validate({"roles": roles}).roles
    except ValidationError as exc:
        raise ConfigError(_format_errors(exc, "--role")) from exc
    return settings.model_copy(update={"roles": checked})


_REFERENCE = re.compile(r"\$(\$?)\{([A-Za-z_][A-Za-z0-9_]*)\}")


def _expand_references(node: Any, environ: dict[str, str], path: str, missing: list[str]) -> Any:
    """``${NAME}`` in a string of the file is the environment variable NAME; ``$${NAME}`` is the
    literal text ``${NAME}``. It reaches what ``SGW_<SECTION>__<KEY>`` cannot: a setting of a list
    entry, such as an adapter's database URL or a connector's password. The variables' values are
    not expanded again, and an unset one is an error naming the setting (never a value)."""
    if isinstance(node, dict):
        return {key: _expand_references(value, environ, f"{path}.{key}" if path else str(key), missing)
                for key, value in node.items()}
    if isinstance(node, list):
        return [_expand_references(value, environ, f"{path}[{i}]", missing) for i, value in enumerate(node)]
    if not isinstance(node, str) or "${" not in node:
        return node

    def value_of(match: re.Match[str]) -> str:
        escaped, name = match.groups()
        if escaped:
            return "${" + name + "}"
        if name not in environ:
            missing.append(f"{path}: environment variable {name} is not set (referenced as ${{{name}}})")
            return ""
        return environ[name]

    return _REFERENCE.sub(value_of, node)


def _apply_env(data: dict[str, Any], environ: dict[str, str]) -> dict[str, Any]:
    for key, value in environ.items():
        if not key.startswith("SGW_"):
            continue
        path = key[4:].lower().split("__")
        node = data
        for part in path[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"{key}: cannot override a non-mapping setting")
        node[path[-1]] = value
    return data


def _format_errors(error: ValidationError, source: str) -> list[str]:
    problems: list[str] = []
    for item in error.errors():
        loc = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in item["loc"]).lstrip(".")
        message = item["msg"]
        if item["type"] == "value_error" and "\n" in message:
            problems.extend(f"{source}: {line.removeprefix('Value error, ')}" for line in message.splitlines())
            continue
        problems.append(f"{source}: {loc or '(root)'}: {message.removeprefix('Value error, ')}")
    return problems


def load_settings(path: Path | None, *, environ: dict[str, str] | None = None) -> Settings:
    """Read, merge and validate the configuration; raise ConfigError listing every problem."""
    data: dict[str, Any] = {}
    source = "<defaults>"
    if path is not None:
        source = str(path)
        try:
            loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise ConfigError(f"{path}: cannot read: {exc.strerror}") from exc
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
        if loaded is not None and not isinstance(loaded, dict):
            raise ConfigError(f"{path}: the top level must be a mapping")
        data = loaded or {}
    env = dict(os.environ if environ is None else environ)
    missing: list[str] = []
    data = _expand_references(data, env, "", missing)
    if missing:
        raise ConfigError([f"{source}: {problem}" for problem in missing])
    data = _apply_env(data, env)
    try:
        settings = Settings.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_format_errors(exc, source)) from exc
    if path is not None and not settings.mappings_dir.is_absolute():
        settings = settings.model_copy(update={"mappings_dir": (path.parent / settings.mappings_dir).resolve()})
    return settings
