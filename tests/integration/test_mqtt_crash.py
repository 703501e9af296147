"""Kill -9 the gateway while devices publish 1,000 messages/s; after restart every published
message is in the data centre exactly once (QoS 1, persistent session, PUBACK after the write).

The broker is a private Mosquitto on a free port: a stock Mosquitto keeps at most 1,000 queued
messages per offline session (``max_queued_messages``) and silently drops the rest, which would
make the test measure the broker's configuration, not the gateway. Production brokers for this
contract need the same setting (the contract asks for sessions that survive >= 1 h).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.conftest import ROOT, free_port
from tests.integration.test_mqtt_ingest import gateway_config, mqtt_options
from tests.peers import mqtt_devices as sim

pytestmark = pytest.mark.integration

TOTAL = 8000
RATE_PER_S = 1000.0


@pytest.fixture
def private_broker(tmp_path: Path) -> Iterator[int]:
    with sim.private_mosquitto(tmp_path, free_port()) as port:
        yield port


def start_gateway(config: Path, log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen([sys.executable, "-m", "gateway.cli", "run", "-c", str(config)], cwd=ROOT,
                                stdout=out, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"})


def dc_readings(dc: Path) -> list[tuple[str, str]]:
    engine = sa.create_engine(f"sqlite:///{dc}")
    try:
        with engine.connect() as conn:
            rows = conn.execute(sa.text("SELECT device_id, observed_at FROM ex_iot_reading")).all()
    except sa.exc.OperationalError:
        return []
    finally:
        engine.dispose()
    return [(r[0], datetime.fromisoformat(str(r[1])).strftime("%Y%m%d%H%M%S")) for r in rows]


def wait_rows(dc: Path, count: int, timeout_s: float) -> list[tuple[str, str]]:
    deadline = time.monotonic() + timeout_s
    rows = dc_readings(dc)
    while len(rows) < count and time.monotonic() < deadline:
        time.sleep(0.2)
        rows = dc_readings(dc)
    return rows


@pytest.mark.timeout(120)
def test_kill_9_mid_stream_loses_nothing_and_duplicates_nothing(tmp_path: Path, private_broker: int) -> None:
    tag = uuid.uuid4().hex[:8]
    prefix = f"k{tag}/"
    options = mqtt_options(prefix, f"sgw-kill-{tag}", broker={"port": private_broker})
    config = gateway_config(tmp_path, options)
    config["api"] = {"port": free_port()}
    config["logging"] = {"level": "WARNING"}
    config_path = tmp_path / "gateway.yaml"
    config_path.write_text(json.dumps(config), encoding="utf-8")
    dc = tmp_path / "dc.sqlite"
    log = tmp_path / "gateway.log"

    gateway = start_gateway(config_path, log)
    device = sim.Publisher(f"sim-{tag}", port=private_broker)
    try:
        # warm-up reading, repeated byte for byte until it arrives (ingest dedupes the identical
        # repeats; a new msgId would make a new version of the reading): proves the
        # persistent session and its subscriptions exist before the stream starts
        deadline = time.monotonic() + 30
        while not dc_readings(dc):
            assert time.monotonic() < deadline, log.read_text(encoding="utf-8")[-3000:]
            device.publish(f"{prefix}iot/v1/330106/YY3301060000771/telemetry",
                           sim.telemetry_json("YY3301060000771", sim.BASE_TS_MS - 60_000, msg_id="warm-up"))
            time.sleep(0.5)

        sent: list[int] = []
        stream = threading.Thread(target=lambda: sent.append(device.publish_at_rate(
            sim.telemetry_stream(prefix, TOTAL, hj212_every=10), RATE_PER_S)))
        stream.start()
        time.sleep(3.0)
        gateway.send_signal(signal.SIGKILL)
        gateway.wait(10)
        killed_with = len(dc_readings(dc))
        time.sleep(1.0)  # devices keep publishing into the persistent session
        gateway = start_gateway(config_path, log)
        stream.join(60)
        assert sent == [TOTAL]
        rows = wait_rows(dc, TOTAL + 1, 60)
    finally:
        device.close()
        gateway.send_signal(signal.SIGTERM)
        try:
            gateway.wait(15)
        except subprocess.TimeoutExpired:
            gateway.kill()
    assert 1 < killed_with < TOTAL  # the kill really was mid-stream
    expected = {(sid.split(":")[0], sid.split(":")[2]) for sid in
                (sim.source_record_id(n, hj212_every=10) for n in range(TOTAL))}
    expected.add(("YY3301060000771", sim.beijing(sim.BASE_TS_MS - 60_000)))
    assert len(rows) == len(set(rows)), "a message reached the data centre twice"
    missing = sorted(expected - set(rows))
    assert not missing, f"{len(missing)} of {len(expected)} missing, e.g. {missing[:5]}; " + \
        log.read_text(encoding="utf-8")[-2000:]
    assert set(rows) == expected
