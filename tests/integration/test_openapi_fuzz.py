"""An OpenAPI fuzz run (schemathesis) against the admin, department and ingest APIs of an embedded
gateway behind a real uvicorn server: valid and invalid inputs for every operation, with an admin
token (a department key for push ingest), and no answer may be a 5xx.

Examples are bounded (``EXAMPLES`` per operation and mode) to keep the run under a minute; the
push body, which the OpenAPI document does not describe (the route reads raw JSON), is fuzzed
with Hypothesis' JSON strategy.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
import uvicorn
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis.generation.modes import GenerationMode

from gateway.auth import hash_api_key
from gateway.cli.run_cmd import build_app
from gateway.runtime import Runtime
from tests.conftest import free_port
from tests.servers import embedded_runtime

pytestmark = pytest.mark.integration

ADMIN = "fuzz-admin-token"
DEPARTMENT_KEY = "sgw_fuzz_department_eco"
EXAMPLES = {GenerationMode.POSITIVE: 8, GenerationMode.NEGATIVE: 5}
SKIPPED_PREFIXES = ("/docs", "/redoc", "/openapi.json", "/dashboard")
FUZZ = settings(deadline=None, database=None, derandomize=True, suppress_health_check=list(HealthCheck),
                phases=[Phase.explicit, Phase.generate])


def make_runtime(tmp_path: Path) -> Runtime:
    return embedded_runtime(
        tmp_path, [{"id": "eco-push", "type": "http_push", "mapping": "eco-rest.penalty", "department": "eco"}],
        api={"admin_token": ADMIN, "max_body_bytes": 65536, "max_records_per_request": 20},
        departments=[{"code": "eco", "name": "生态环境局", "api_key_hashes": [hash_api_key(DEPARTMENT_KEY)]}])


@contextmanager
def serving_in_thread(runtime: Runtime) -> Iterator[str]:
    """The gateway behind uvicorn in a thread of its own (schemathesis calls it synchronously)."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(build_app(runtime), host="127.0.0.1", port=port, log_level="warning",
                                           log_config=None, lifespan="on"))
    thread = threading.Thread(target=server.run, name="fuzzed-gateway", daemon=True)
    thread.start()
    started = threading.Event()
    while not started.wait(0.02):
        if server.started:
            started.set()
        elif not thread.is_alive():
            raise RuntimeError("the server stopped before it started")
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=15)


def auth_for(path: str) -> dict[str, str]:
    if path.startswith("/ingest/"):
        return {"X-API-Key": DEPARTMENT_KEY}
    return {"Authorization": f"Bearer {ADMIN}"}


def fuzz_operation(operation: Any, base: str, mode: GenerationMode, failures: list[str]) -> None:
    auth = auth_for(operation.path)

    @settings(FUZZ, max_examples=EXAMPLES[mode])
    @given(case=operation.as_strategy(generation_mode=mode))
    def run(case: Any) -> None:
        headers = {k: v for k, v in (case.headers or {}).items()
                   if k.lower() not in ("authorization", "x-api-key", "x-admin-token")}
        case.headers = {**headers, **auth}
        response = case.call(base_url=base)
        if response.status_code >= 500:
            failures.append(f"{operation.method.upper()} {operation.path} ({mode.value}) -> "
                            f"{response.status_code}: {response.text[:300]} ; request: {case.as_curl_command()}")

    try:
        run()
    except Unsatisfiable:  # nothing invalid can be made for this operation (e.g. it takes no input)
        if mode is GenerationMode.POSITIVE:
            raise


CREDENTIAL_HEADERS = {"authorization", "x-api-key", "x-admin-token"}


def without_credentials(document: dict[str, Any]) -> dict[str, Any]:
    """The document without the credential headers: the fuzz run sends valid ones itself (and
    fuzzing them only tests 401s, at a high cost in generation time)."""
    for path_item in document.get("paths", {}).values():
        for operation in path_item.values():
            if isinstance(operation, dict) and "parameters" in operation:
                operation["parameters"] = [p for p in operation["parameters"]
                                           if not (p.get("in") == "header" and p.get("name", "").lower()
                                                   in CREDENTIAL_HEADERS)]
    return document


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=40),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=6),
    max_leaves=20)
eco_like = st.fixed_dictionaries({}, optional={
    "caseNo": st.text(max_size=30), "creditCode": st.text(max_size=20), "decisionDate": st.text(max_size=12),
    "penaltyAmount": st.one_of(st.floats(allow_nan=False), st.integers(), st.text(max_size=8)),
    "partyName": st.text(max_size=20), "items": json_values})


def negatable(operation: Any) -> bool:
    """Whether invalid input can be made for the operation: a body, a query parameter, or a path
    parameter with a constraint (an unconstrained path string has no invalid form, and searching
    for one only costs time)."""
    raw = operation.definition.raw
    if "requestBody" in raw:
        return True
    for parameter in raw.get("parameters", []):
        schema = parameter.get("schema", {})
        if parameter.get("in") == "query" or set(schema) - {"type", "title", "description"} \
                or schema.get("type") != "string":
            return True
    return False


def fuzz(mode: GenerationMode, tmp_path: Path) -> None:
    failures: list[str] = []
    with serving_in_thread(make_runtime(tmp_path)) as base:
        schema = schemathesis.openapi.from_dict(without_credentials(httpx.get(f"{base}/openapi.json").json()))
        operations = [result.ok() for result in schema.get_all_operations()]
        fuzzed = [op for op in operations if not op.path.startswith(SKIPPED_PREFIXES)
                  and (mode is GenerationMode.POSITIVE or negatable(op))]
        assert any(op.path.startswith("/admin/departments") for op in fuzzed)
        assert mode is GenerationMode.NEGATIVE or any(op.path.startswith("/ingest/") for op in fuzzed)
        for operation in fuzzed:
            fuzz_operation(operation, base, mode, failures)
    assert not failures, "\n".join(failures[:20])


def test_no_operation_answers_5xx_to_valid_requests(tmp_path: Path) -> None:
    fuzz(GenerationMode.POSITIVE, tmp_path)


def test_no_operation_answers_5xx_to_invalid_requests(tmp_path: Path) -> None:
    fuzz(GenerationMode.NEGATIVE, tmp_path)


def test_push_ingest_answers_no_5xx_to_fuzzed_json_bodies(tmp_path: Path) -> None:
    failures: list[str] = []
    with serving_in_thread(make_runtime(tmp_path)) as base, httpx.Client(base_url=base) as client:

        @settings(FUZZ, max_examples=60)
        @given(body=st.one_of(eco_like, st.lists(eco_like, min_size=1, max_size=5), json_values))
        def push(body: Any) -> None:
            answer = client.post("/ingest/eco-push", json=body, headers={"X-API-Key": DEPARTMENT_KEY})
            if answer.status_code >= 500:
                failures.append(f"{answer.status_code}: {answer.text[:300]} for {body!r}"[:600])

        push()
    assert not failures, "\n".join(failures[:20])


@pytest.mark.parametrize(("method", "path", "body"), [
    ("GET", "/admin/dead-letters/99999999999999999999", None),  # SQLite refused the integer: was a 500
    ("POST", "/admin/dead-letters/99999999999999999999/discard", {"reason": "x"}),
    ("POST", "/admin/dead-letters/redrive", {"ids": ["99999999999999999999"]}),
    ("GET", "/admin/audit?since=0001-01-01T00:00:00%2B05:00", None),  # before year 1 in UTC
])
def test_inputs_the_fuzz_run_found_get_a_4xx_or_nothing(tmp_path: Path, method: str, path: str,
                                                         body: dict[str, Any] | None) -> None:
    with serving_in_thread(make_runtime(tmp_path)) as base:
        answer = httpx.request(method, f"{base}{path}", json=body, headers={"Authorization": f"Bearer {ADMIN}"})
    assert answer.status_code < 500, answer.text
