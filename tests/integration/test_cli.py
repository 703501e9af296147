"""The sgw command line, run as a process the way people run it."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import MAPPINGS, ROOT, SAMPLES, free_port

pytestmark = pytest.mark.integration
BATCH = SAMPLES / "batch-files"


def sgw(*args: str, timeout_s: float = 50) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "gateway.cli", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=timeout_s, check=False)


def lines(out: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def test_map_lists_every_mapping_with_its_source_folder_format_and_kind() -> None:
    done = sgw("map", "--list", "--json")
    assert done.returncode == 0, done.stderr
    rows = json.loads(done.stdout)
    by_source = {row["source"] for row in rows}
    assert {"ministry-soap", "eco-rest", "batch-files", "iot-mqtt", "video-ai", "hotline-12345",
            "hotline-12315", "credit-publication"} <= by_source
    assert all((SAMPLES / row["source"]).is_dir() and row["format"] and row["kind"] for row in rows)


def test_map_of_the_bad_batch_file_rejects_the_bad_rows_with_their_codes_and_exits_1() -> None:
    done = sgw("map", "-m", "batch-files.penalty-csv", str(BATCH / "113301220025023382_XZCF_20250612_002.csv"))
    assert done.returncode == 1, done.stderr
    out = lines(done.stdout)
    assert [o["status"] for o in out] == ["accepted", "rejected", "rejected", "accepted", "rejected",
                                          "rejected", "accepted", "duplicate"]
    codes = {i + 1: {(e["code"], e["field"]) for e in o["errors"]} for i, o in enumerate(out)}
    assert ("RULE:CPT-001", "counterparty_id_no") in codes[2]  # the counterparty USCC is checked by CPT-001
    assert ("REQUIRED", "decision_doc_no") in codes[3]
    assert any(code == "CODE_UNKNOWN" and field.startswith("penalty_types") for code, field in codes[5])
    assert any(code == "TYPE" and field == "decided_at" for code, field in codes[6])
    row2 = next(e for e in out[1]["errors"] if e["field"] == "counterparty_id_no")
    assert row2["location"] == "row 2, column 统一社会信用代码"
    assert row2["message_zh"] and row2["message_en"]


def test_map_of_the_valid_batch_file_accepts_every_row_and_exits_0() -> None:
    done = sgw("map", "-m", "batch-files.penalty-csv", str(BATCH / "113301220025023382_XZCF_20250612_001.csv"))
    assert done.returncode == 0, done.stdout[-2000:]
    out = lines(done.stdout)
    assert len(out) == 20 and {o["status"] for o in out} == {"accepted"}
    assert all(o["record"]["record_kind"] == "penalty" and o["record"]["record_id"] for o in out)


def test_map_usage_errors_exit_2() -> None:
    unknown = sgw("map", "-m", "batch-files.penalty-cvs", str(BATCH / "113301220025023382_XZCF_20250612_001.csv"))
    assert unknown.returncode == 2
    assert "did you mean 'batch-files.penalty-csv'" in unknown.stderr
    assert sgw("map", "-m", "batch-files.penalty-csv").returncode == 2


def test_a_hostile_file_is_refused_with_a_reason(tmp_path: Path) -> None:
    bomb = tmp_path / "bomb.xml"
    bomb.write_text('<?xml version="1.0"?><!DOCTYPE r [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;">]>'
                    "<DataPackage><Records><Record><XDRMC>&b;</XDRMC></Record></Records></DataPackage>")
    done = sgw("map", "-m", "batch-files.penalty-xml", str(bomb))
    assert done.returncode == 1
    (failure,) = lines(done.stdout)
    assert failure["status"] == "rejected" and failure["errors"][0]["code"] == "XML_FORBIDDEN"


def test_check_runs_every_golden_example_of_the_demo_config() -> None:
    done = sgw("check", "-c", "config/demo.yaml")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"


def test_check_names_file_line_and_field_of_a_broken_mapping(tmp_path: Path) -> None:
    mappings = tmp_path / "mappings"
    shutil.copytree(MAPPINGS, mappings)
    target = mappings / "eco-rest.penalty.yaml"
    broken = target.read_text(encoding="utf-8").replace("fields:\n", "fields:\n  no_such_field: {const: x}\n", 1)
    target.write_text(broken, encoding="utf-8")
    config = tmp_path / "gateway.yaml"
    config.write_text("mappings_dir: mappings\n", encoding="utf-8")
    done = sgw("check", "-c", str(config))
    assert done.returncode == 2
    assert "eco-rest.penalty.yaml:" in done.stderr and "no_such_field" in done.stderr


def test_demo_runs_every_sample_source_into_the_data_centre(tmp_path: Path) -> None:
    done = sgw("demo", "--once", "--workdir", str(tmp_path / "demo"), "--port", str(free_port()), timeout_s=55)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "ex_penalty" in done.stdout and "ex_iot_reading" in done.stdout and "ex_complaint" in done.stdout
    assert "push over HTTP (POST /ingest/eco-penalty-push): 202" in done.stdout


def test_map_reads_xlsx_and_gbk_xml_files() -> None:
    xlsx = sgw("map", "-m", "batch-files.penalty-xlsx", str(BATCH / "11330127002503410C_XZCF_20250612_001.xlsx"))
    assert xlsx.returncode == 0, xlsx.stdout[-2000:]
    rows = lines(xlsx.stdout)
    assert len(rows) == 5 and rows[2]["record"]["decided_at"] == "2025-06-09"  # the text date 2025年6月9日
    xml = sgw("map", "-m", "batch-files.penalty-xml", str(BATCH / "11330106002500121C_XZCF_20250620_001.xml"))
    assert xml.returncode == 0, xml.stdout[-2000:]
    assert [r["status"] for r in lines(xml.stdout)] == ["accepted"] * 3
