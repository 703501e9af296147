"""The role × route matrix: every route of the real app, every method, called over HTTP by every
role, with no token and with a bad token; 401/403 must be exactly where the table says.

``EXPECTED`` is written out by hand (not derived from ``gateway.api.authz.PERMISSIONS``), so a
change of a permission shows here as a deliberate edit. The routes are enumerated from the app:
a route missing from the table, or an entry with no route, fails the test. When you add a route,
add a line to ``EXPECTED``: ``PUBLIC`` or the set of roles that may call it (the others get 403;
no token or a bad one gets 401). "Allowed" means anything but 401/403 (a 404 or 422 for the dummy
path values and empty bodies used here is fine). Routes with a ``{code}`` or ``{department}``
are also called by a department for another department's code: 403.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from gateway.auth import hash_api_key
from gateway.cli.run_cmd import build_app
from gateway.runtime import Runtime
from tests.servers import embedded_runtime, serving

pytestmark = pytest.mark.integration

ADMIN, INTEGRATOR, OPS, DEPARTMENT, VIEWER = "admin", "integrator", "ops", "department", "viewer"
PUBLIC = frozenset({"*"})
ALL = frozenset({ADMIN, INTEGRATOR, OPS, DEPARTMENT, VIEWER})
STAFF = frozenset({ADMIN, INTEGRATOR, OPS, VIEWER})
ADMIN_ONLY = frozenset({ADMIN})
BUILDERS = frozenset({ADMIN, INTEGRATOR})
OPERATORS = frozenset({ADMIN, INTEGRATOR, OPS})

EXPECTED: dict[tuple[str, str], frozenset[str]] = {
    # documentation and probes
    ("GET", "/openapi.json"): PUBLIC, ("HEAD", "/openapi.json"): PUBLIC,
    ("GET", "/docs"): PUBLIC, ("HEAD", "/docs"): PUBLIC,
    ("GET", "/docs/oauth2-redirect"): PUBLIC, ("HEAD", "/docs/oauth2-redirect"): PUBLIC,
    ("GET", "/redoc"): PUBLIC, ("HEAD", "/redoc"): PUBLIC,
    ("GET", "/healthz"): PUBLIC,
    ("GET", "/readyz"): PUBLIC,
    ("GET", "/metrics"): PUBLIC,
    # push ingest: department keys only
    ("POST", "/ingest/{connector}"): frozenset({DEPARTMENT}),
    # dead letters, rejections, journeys
    ("GET", "/admin/dead-letters"): frozenset({ADMIN, OPS, VIEWER}),
    ("GET", "/admin/dead-letters/{item_id}"): frozenset({ADMIN, OPS, VIEWER}),
    ("POST", "/admin/dead-letters/redrive"): frozenset({ADMIN, OPS}),
    ("POST", "/admin/dead-letters/{item_id}/discard"): frozenset({ADMIN, OPS}),
    ("GET", "/admin/rejections"): ALL,
    ("GET", "/admin/records/{record_id}/journey"): ALL,
    # departments and keys
    ("GET", "/admin/departments"): ALL,
    ("POST", "/admin/departments"): ADMIN_ONLY,
    ("GET", "/admin/departments/{code}"): ALL,
    ("PATCH", "/admin/departments/{code}"): ADMIN_ONLY,
    ("DELETE", "/admin/departments/{code}"): ADMIN_ONLY,
    ("GET", "/admin/departments/{code}/keys"): ADMIN_ONLY,
    ("POST", "/admin/departments/{code}/keys"): ADMIN_ONLY,
    ("GET", "/admin/keys"): ADMIN_ONLY,
    ("POST", "/admin/keys"): ADMIN_ONLY,
    ("GET", "/admin/keys/{key_id}"): ADMIN_ONLY,
    ("POST", "/admin/keys/{key_id}/rotate"): ADMIN_ONLY,
    ("POST", "/admin/keys/{key_id}/revoke"): ADMIN_ONLY,
    # the audit log
    ("GET", "/admin/audit"): ADMIN_ONLY,
    ("GET", "/admin/audit/verify"): ADMIN_ONLY,
    # a department's own view
    ("GET", "/departments/{code}/submissions"): ALL,
    ("GET", "/departments/{code}/rejections"): ALL,
    ("POST", "/departments/{code}/rejections/{rejection_id}/resubmit"): frozenset({ADMIN, DEPARTMENT}),
    # connector types, connectors, mappings, routing (the integrators' registry)
    ("GET", "/admin/connector-plugins"): STAFF,
    ("PUT", "/admin/connector-plugins/{type_name}/config/validate"): STAFF,
    ("GET", "/admin/connectors"): STAFF,
    ("POST", "/admin/connectors"): BUILDERS,
    ("GET", "/admin/connectors/{connector_id}"): STAFF,
    ("PUT", "/admin/connectors/{connector_id}/config"): BUILDERS,
    ("DELETE", "/admin/connectors/{connector_id}"): BUILDERS,
    ("GET", "/admin/connectors/{connector_id}/status"): STAFF,
    ("PUT", "/admin/connectors/{connector_id}/pause"): OPERATORS,
    ("PUT", "/admin/connectors/{connector_id}/resume"): OPERATORS,
    ("POST", "/admin/connectors/{connector_id}/restart"): OPERATORS,
    ("POST", "/admin/connectors/{connector_id}/test"): BUILDERS,
    ("POST", "/admin/connectors/{connector_id}/dry-run"): BUILDERS,
    ("GET", "/admin/mappings"): STAFF,
    ("GET", "/admin/mappings/{name}"): STAFF,
    ("PUT", "/admin/mappings/{name}"): BUILDERS,
    ("GET", "/admin/mappings/{name}/versions/{version}"): STAFF,
    ("GET", "/admin/routing"): STAFF,
    ("PUT", "/admin/routing"): BUILDERS,
    # metrics, dashboard, data quality
    ("GET", "/admin/overview"): STAFF,
    ("GET", "/admin/quality"): ALL,
    ("GET", "/admin/quality/{department}"): ALL,
    ("GET", "/dashboard"): PUBLIC,
    ("GET", "/dashboard/"): PUBLIC,
    ("GET", "/dashboard/{name}"): PUBLIC,
}

TOKENS = {ADMIN: "matrix-admin-token", INTEGRATOR: "matrix-integrator-token", OPS: "matrix-ops-token",
          VIEWER: "matrix-viewer-token", DEPARTMENT: "sgw_matrix_department_eco"}
OTHER_DEPARTMENT_KEY = "sgw_matrix_department_other"
PATH_VALUES = {"code": "eco", "department": "eco", "connector": "eco-push",
               "record_id": "00000000-0000-4000-8000-000000000000"}
CALLERS = ("no token", "bad token", ADMIN, INTEGRATOR, OPS, VIEWER, DEPARTMENT)


def make_runtime(tmp_path: Path) -> Runtime:
    tokens = [{"name": f"matrix-{role}", "role": role, "token_hash": hash_api_key(TOKENS[role])}
              for role in (INTEGRATOR, OPS, VIEWER)]
    return embedded_runtime(
        tmp_path, [{"id": "eco-push", "type": "http_push", "mapping": "eco-rest.penalty", "department": "eco"}],
        api={"admin_token": TOKENS[ADMIN], "tokens": tokens},
        departments=[{"code": "eco", "name": "生态环境局", "api_key_hashes": [hash_api_key(TOKENS[DEPARTMENT])]},
                     {"code": "other", "name": "另一部门", "api_key_hashes": [hash_api_key(OTHER_DEPARTMENT_KEY)]}])


def app_routes(app: FastAPI) -> Iterator[tuple[str, str]]:
    """Every (method, path template) the app serves, included routers unfolded."""
    try:
        from fastapi.routing import iter_route_contexts
    except ImportError:  # FastAPI before lazily included routers
        for route in app.routes:
            for method in getattr(route, "methods", None) or ():
                yield method, route.path  # type: ignore[attr-defined]
        return
    for context in iter_route_contexts(app.routes):
        for method in context.methods or ():
            if context.path is not None:
                yield method, context.path


def concrete(path: str, values: dict[str, str]) -> str:
    out = path
    while "{" in out:
        start = out.index("{")
        end = out.index("}", start)
        name = out[start + 1:end].split(":")[0]
        out = out[:start] + values.get(name, "1") + out[end + 1:]
    return out


def headers_for(caller: str) -> dict[str, str]:
    if caller == "no token":
        return {}
    if caller == "bad token":
        return {"Authorization": "Bearer not-a-valid-token"}
    return {"Authorization": f"Bearer {TOKENS[caller]}"}


def verdict(status: int) -> str:
    return "allowed" if status not in (401, 403) else str(status)


def wanted(roles: frozenset[str], caller: str) -> str:
    if roles is PUBLIC:
        return "allowed"
    if caller in ("no token", "bad token"):
        return "401"
    return "allowed" if caller in roles else "403"


async def call(client: httpx.AsyncClient, method: str, path: str, headers: dict[str, str]) -> int:
    body = {"json": {}} if method in ("POST", "PUT", "PATCH") else {}
    answer = await client.request(method, path, headers=headers, **body)  # type: ignore[arg-type]
    return answer.status_code


async def test_every_route_answers_every_role_as_the_table_says(tmp_path: Path) -> None:
    runtime = make_runtime(tmp_path)
    app = build_app(runtime)
    served = sorted(set(app_routes(app)))
    missing = [r for r in served if r not in EXPECTED]
    stale = [r for r in EXPECTED if r not in served]
    assert not missing, f"routes without an expectation (add them to EXPECTED): {missing}"
    assert not stale, f"EXPECTED names routes the app does not serve: {stale}"

    wrong: list[str] = []
    async with serving(runtime) as base, httpx.AsyncClient(base_url=base, timeout=30) as client:
        for method, template in served:
            path = concrete(template, PATH_VALUES)
            for caller in CALLERS:
                got = verdict(await call(client, method, path, headers_for(caller)))
                if got != wanted(EXPECTED[(method, template)], caller):
                    wrong.append(f"{method} {template} as {caller}: got {got}, "
                                 f"expected {wanted(EXPECTED[(method, template)], caller)}")
            if any(f"{{{name}}}" in template for name in ("code", "department")):
                other = concrete(template, {**PATH_VALUES, "code": "other", "department": "other"})
                roles = EXPECTED[(method, template)]
                if DEPARTMENT in roles and roles is not PUBLIC:
                    got = verdict(await call(client, method, other, {"X-API-Key": OTHER_DEPARTMENT_KEY}))
                    if got != "allowed":
                        wrong.append(f"{method} {template} by a department for its own code: got {got}")
                    got = verdict(await call(client, method, path, {"X-API-Key": OTHER_DEPARTMENT_KEY}))
                    if got != "403":
                        wrong.append(f"{method} {template} by a department for another's code: got {got}")
    assert not wrong, "\n".join(wrong)
