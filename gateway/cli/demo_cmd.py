"""``sgw demo``: the embedded gateway with every source's samples flowing, and where to look."""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import shutil
from pathlib import Path
from typing import Any

import httpx
import typer
import uvicorn
from pydantic import SecretStr
from sqlalchemy import create_engine, func, inspect, select, table

from gateway.cli.run_cmd import build_app
from gateway.runtime import Runtime
from gateway.settings import AdapterSettings, Settings, load_settings
from monitoring.logs import configure_logging

DEMO_KEY = "sgw_demo_key_not_secret"
PUSH_SAMPLE = Path("config/samples/eco-rest/penalties-page-1.json")


def repository_root() -> Path:
    for candidate in (Path.cwd(), Path(__file__).resolve().parents[2]):
        if (candidate / "config" / "demo.yaml").exists():
            return candidate
    raise typer.BadParameter("cannot find config/demo.yaml: run `sgw demo` from the repository")


def demo_settings(root: Path, workdir: Path, port: int, admin_token: str | None = None) -> Settings:
    settings = load_settings(root / "config" / "demo.yaml")
    adapters = tuple(
        a.model_copy(update={"options": {**a.options, "url": f"sqlite:///{workdir / 'datacentre.sqlite'}"}})
        if a.type == "data_centre" else a
        for a in settings.adapters
    )
    return settings.model_copy(update={
        "stores": settings.stores.model_copy(update={"database_url": f"sqlite:///{workdir / 'gateway.sqlite'}"}),
        "api": settings.api.model_copy(update={
            "port": port, "admin_token": SecretStr(admin_token) if admin_token else settings.api.admin_token}),
        "adapters": adapters,
    })


async def _push_once(port: int) -> dict[str, Any]:
    """Push one new decision (a sample item under a new case and decision number) over HTTP."""
    item = json.loads((PUSH_SAMPLE).read_text(encoding="utf-8"))["items"][0]
    item.update(id=f"DEMO-{item['id']}", caseNo=f"DEMO-{item['caseNo']}", decisionNo=f"{item['decisionNo']}-推送演示")
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
        answer = await client.post("/ingest/eco-penalty-push", json=[item], headers={"X-API-Key": DEMO_KEY})
    return {"status": answer.status_code, **answer.json()}


def _table_counts(url: str) -> dict[str, int]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            names = [n for n in inspect(conn).get_table_names() if n.startswith("ex_")]
            counts = {n: conn.execute(select(func.count()).select_from(table(n))).scalar_one() for n in names}
    finally:
        engine.dispose()
    return {n: c for n, c in sorted(counts.items()) if c}


def _print_summary(runtime: Runtime, push: dict[str, Any], workdir: Path, adapter: AdapterSettings | None,
                   port: int) -> None:
    totals = runtime.store.totals()
    typer.echo("\n== Supervision Gateway demo ==")
    typer.echo(f"records: {totals['accepted']} accepted, {totals['rejected']} rejected, "
               f"{totals['duplicate']} duplicate (every sample source replayed through its mapping)")
    typer.echo(f"push over HTTP (POST /ingest/eco-penalty-push): {push['status']} {push.get('counts')}")
    if adapter is not None:
        typer.echo("data centre tables (ex_*), rows written:")
        for name, count in _table_counts(str(adapter.options["url"])).items():
            typer.echo(f"  {name:<28} {count}")
    typer.echo("a few rejections, as the department sees them:")
    for rejection in runtime.store.recent_rejections(5):
        first = rejection["errors"][0] if rejection["errors"] else {}
        typer.echo(f"  [{rejection['connector']}] due {rejection['due_on']}  {first.get('code')}  "
                   f"{first.get('location')}  {first.get('message_zh')}")
    typer.echo("where to look:")
    typer.echo(f"  API and OpenAPI:   http://127.0.0.1:{port}/docs   (metrics: /metrics)")
    if runtime.settings.api.admin_token is not None:
        typer.echo(f"  ops dashboard:     http://127.0.0.1:{port}/dashboard/   token for this run: "
                   f"{runtime.settings.api.admin_token.get_secret_value()}")
    typer.echo(f"  gateway store:     sqlite3 {workdir / 'gateway.sqlite'}  (rejections, journeys, outbox)")
    typer.echo(f"  data centre:       sqlite3 {workdir / 'datacentre.sqlite'}  (ex_* tables)")
    typer.echo(f"  push a record:     curl -X POST -H 'X-API-Key: {DEMO_KEY}' -H 'Content-Type: application/json' "
               f"--data @{PUSH_SAMPLE} http://127.0.0.1:{port}/ingest/eco-penalty-push")


async def _demo(settings: Settings, workdir: Path, *, once: bool) -> None:
    runtime = Runtime(settings)
    server = uvicorn.Server(uvicorn.Config(build_app(runtime), host="127.0.0.1", port=settings.api.port,
                                           log_level="warning", log_config=None))
    serving = asyncio.create_task(server.serve())
    try:
        while not server.started:
            if serving.done():
                await serving
                raise typer.Exit(1)
            await asyncio.sleep(0.05)
        replays = [c for c in runtime.assembly.connectors.values() if hasattr(c, "done")]
        await asyncio.gather(*(c.done.wait() for c in replays))
        push = await _push_once(settings.api.port)
        await runtime.drain()
        adapter = next((a for a in settings.adapters if a.type == "data_centre"), None)
        _print_summary(runtime, push, workdir, adapter, settings.api.port)
        if not once:
            typer.echo("\nserving; Ctrl-C to stop")
            await serving
    finally:
        server.should_exit = True
        await serving


def demo(workdir: Path, *, once: bool, port: int) -> None:
    root = repository_root()
    os.chdir(root)
    workdir = (root / workdir).resolve() if not workdir.is_absolute() else workdir
    shutil.rmtree(workdir, ignore_errors=True)  # every demo starts from empty stores
    workdir.mkdir(parents=True)
    configure_logging("WARNING", json_format=False)
    asyncio.run(_demo(demo_settings(root, workdir, port, admin_token=secrets.token_urlsafe(18)), workdir, once=once))
