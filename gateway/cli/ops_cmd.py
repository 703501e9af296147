"""``sgw dead-letters list|show|redrive|discard``, ``sgw rejections list``, ``sgw journey RECORD_ID``.

These open the stores named by the config (the database, and Redis when configured) directly, so
they work whether or not a gateway is running; output is JSON, one object per line.
"""

from __future__ import annotations

import getpass
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Any

import orjson
import typer

from gateway.dead_letters import DeadLetterOps, dead_letter_dict, journey_dict, rejection_dict
from gateway.durable import SqlGatewayStore
from gateway.settings import load_settings
from gateway.stores.audit import SqlAuditLog
from gateway.stores.db import create_engine_for, init_schema
from gateway.stores.outbox import DeadLetterFilter
from gateway.stores.redis_outbox import RedisOutbox
from gateway.stores.rejections import RejectionStatus
from mapping.calendar import WorkingCalendar


@contextmanager
def opened(config: Path | None) -> Iterator[DeadLetterOps]:
    settings = load_settings(config)
    engine = create_engine_for(settings.stores.database_url)
    init_schema(engine)
    redis_outbox = None
    if settings.stores.redis_url is not None:
        redis_outbox = RedisOutbox.from_url(settings.stores.redis_url.get_secret_value(),
                                            prefix=settings.stores.redis_prefix, consumer=f"cli-{getpass.getuser()}")
    calendar = WorkingCalendar(settings.calendar.extra_holidays, settings.calendar.extra_workdays)
    try:
        yield DeadLetterOps(SqlGatewayStore(engine, calendar, outbox=redis_outbox), audit=SqlAuditLog(engine))
    finally:
        if redis_outbox is not None:
            redis_outbox.close()
        engine.dispose()


def _echo(obj: Any) -> None:
    typer.echo(orjson.dumps(obj, default=str).decode())


def actor() -> str:
    return f"cli:{getpass.getuser()}"


def list_dead_letters(config: Path | None, where: DeadLetterFilter, limit: int) -> None:
    with opened(config) as ops:
        for item in ops.find(where, limit):
            _echo(dead_letter_dict(item))


def show_dead_letter(config: Path | None, item_id: str) -> int:
    with opened(config) as ops:
        view = ops.show(item_id)
    if view is None:
        typer.echo(f"no dead letter {item_id!r}", err=True)
        return 1
    _echo(view.as_dict())
    return 0


def redrive(config: Path | None, ids: list[str], where: DeadLetterFilter) -> None:
    with opened(config) as ops:
        count = ops.redrive(ids, actor=actor()) if ids else ops.redrive_matching(where, actor=actor())
    _echo({"redriven": count})


def discard(config: Path | None, ids: list[str], reason: str) -> int:
    with opened(config) as ops:
        count = ops.discard(ids, reason=reason, actor=actor())
    _echo({"discarded": count})
    return 0 if count else 1


def list_rejections(config: Path | None, department: str | None, status: RejectionStatus | None,
                    due_before: date | None, limit: int) -> None:
    with opened(config) as ops:
        for r in ops.rejections(department, status, due_before, limit):
            _echo(rejection_dict(r))


def journey(config: Path | None, record_id: str) -> int:
    with opened(config) as ops:
        steps = ops.journey(record_id)
    for step in steps:
        _echo(journey_dict(step))
    return 0 if steps else 1
