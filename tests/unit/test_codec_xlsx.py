"""XLSX codec: the sample, cell conversion, and archives that must be refused before inflating."""

from __future__ import annotations

import io
import random
import struct
import zipfile
from collections.abc import Sequence
from datetime import date, datetime, time
from pathlib import Path
from typing import Any

import pytest
from openpyxl import Workbook

from connectors.codecs import DecodeLimits, cell_text, decode, iter_xlsx_rows
from gateway.errors import PayloadError

SAMPLES = Path(__file__).resolve().parents[2] / "config" / "samples"
SAMPLE = SAMPLES / "batch-files" / "11330127002503410C_XZCF_20250612_001.xlsx"


def _workbook_bytes(rows: Sequence[Sequence[object]], title: str = "行政处罚") -> bytes:
    workbook = Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.title = title
    for row in rows:
        sheet.append(row)
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def _code(data: bytes, **kwargs: Any) -> str:
    with pytest.raises(PayloadError) as caught:
        decode("xlsx", data, **kwargs)
    return caught.value.code


def _rezip(data: bytes, extra: dict[str, bytes], *, compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    """The workbook's members plus ``extra`` (added or replaced)."""
    source = zipfile.ZipFile(io.BytesIO(data))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression) as target:
        for info in source.infolist():
            if info.filename not in extra:
                target.writestr(info.filename, source.read(info.filename))
        for name, content in extra.items():
            target.writestr(name, content)
    return buffer.getvalue()


def test_sample_decodes_with_iso_dates_and_integer_strings() -> None:
    rows = decode("xlsx", SAMPLE.read_bytes())
    assert len(rows) == 5
    first = rows[0]
    assert first["行政相对人名称"] == "淳安示例渔业发展有限公司"
    assert first["罚款金额(元)"] == "25000"
    assert first["没收违法所得、没收非法财物金额(元)"] == "5200"
    assert first["处罚决定日期"] == "2025-06-02"
    assert first["证件号码"] == ""
    assert first["备注"] == ""
    assert len(first) == 26
    assert rows[2]["处罚决定日期"] == "2025年6月9日"  # a text cell stays as written
    assert rows[4]["证件号码"] == "330127196909213155"
    assert rows[4]["行政相对人类别"] == "自然人"


def test_iter_xlsx_rows_from_path_and_stream() -> None:
    from_path = list(iter_xlsx_rows(SAMPLE))
    from_stream = list(iter_xlsx_rows(io.BytesIO(SAMPLE.read_bytes())))
    assert from_path == from_stream
    assert [row["处罚行为编号"] for row in from_path][-1] == "CF3301272025000045"


def test_numeric_id_cell_keeps_excel_digits() -> None:
    data = _workbook_bytes([["证件号码", "金额", "比例"], [330102199002273000, 1500.0, 0.05]])
    assert decode("xlsx", data) == [{"证件号码": "330102199002273000", "金额": "1500", "比例": "0.05"}]


def test_datetime_cells() -> None:
    data = _workbook_bytes([["d", "dt", "t"], [date(2025, 6, 9), datetime(2025, 6, 9, 10, 0), time(8, 30)]])
    assert decode("xlsx", data) == [{"d": "2025-06-09", "dt": "2025-06-09T10:00:00", "t": "08:30:00"}]


def test_date_cell_out_of_range_becomes_an_error_value_without_warning() -> None:
    workbook = Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.append(["d"])
    sheet.append([1])
    sheet["A2"].value = 99_999_999_999
    sheet["A2"].number_format = "yyyy-mm-dd"
    buffer = io.BytesIO()
    workbook.save(buffer)
    assert decode("xlsx", buffer.getvalue()) == [{"d": "#VALUE!"}]


def test_cell_text_conversions() -> None:
    assert cell_text(None) == ""
    assert cell_text(True) == "true"
    assert cell_text(42) == "42"
    assert cell_text(3.30102199002273e17) == "330102199002273000"
    assert cell_text(1e-05) == "0.00001"
    assert cell_text(12.5) == "12.5"
    assert cell_text(datetime(2025, 6, 9, 0, 0)) == "2025-06-09"
    assert cell_text(datetime(2025, 6, 9, 10, 0, 5)) == "2025-06-09T10:00:05"


def test_header_is_normalised_and_short_rows_padded() -> None:
    data = _workbook_bytes([["罚款金额（元）", " 备注 ", None], ["100"], [None, None], ["200", "x"]])
    assert decode("xlsx", data) == [
        {"罚款金额(元)": "100", "备注": ""},
        {"罚款金额(元)": "", "备注": ""},
        {"罚款金额(元)": "200", "备注": "x"},
    ]


def test_value_beyond_the_header_is_malformed() -> None:
    assert _code(_workbook_bytes([["a"], ["1", "2"]])) == "MALFORMED"


def test_empty_sheet_is_header_missing() -> None:
    assert _code(_workbook_bytes([])) == "HEADER_MISSING"


def test_duplicate_header_is_malformed() -> None:
    assert _code(_workbook_bytes([["a", "a"], ["1", "2"]])) == "MALFORMED"


def test_max_rows() -> None:
    data = _workbook_bytes([["a"], *[[i] for i in range(6)]])
    assert len(decode("xlsx", data, max_rows=6)) == 6
    assert _code(data, max_rows=5) == "PAYLOAD_TOO_LARGE"


def test_oversized_file_refused_before_opening() -> None:
    assert _code(SAMPLE.read_bytes(), max_bytes=1000) == "PAYLOAD_TOO_LARGE"


def test_sparse_row_far_below_is_bounded_by_max_rows() -> None:
    # One cell at row 1,000,000: openpyxl would yield 999,998 empty rows first.
    data = _workbook_bytes([["a"], ["1"]])
    sheet = zipfile.ZipFile(io.BytesIO(data)).read("xl/worksheets/sheet1.xml")
    far = b'<row r="1000000"><c r="A1000000" t="inlineStr"><is><t>x</t></is></c></row></sheetData>'
    data = _rezip(data, {"xl/worksheets/sheet1.xml": sheet.replace(b"</sheetData>", far)})
    assert _code(data, max_rows=1000) == "PAYLOAD_TOO_LARGE"


# --- hostile archives ---------------------------------------------------------------------------


def test_member_that_inflates_hugely_is_a_zip_bomb() -> None:
    buffer = io.BytesIO(_workbook_bytes([["a"], ["1"]]))
    archive = zipfile.ZipFile(buffer, "a", zipfile.ZIP_DEFLATED)
    with archive, archive.open("xl/media/pad.bin", "w") as member:
        for _ in range(64):
            member.write(b"\0" * (1024 * 1024))
    data = buffer.getvalue()
    assert len(data) < 200_000
    assert _code(data) == "ZIP_BOMB"


def test_total_uncompressed_size_is_bounded() -> None:
    data = _rezip(_workbook_bytes([["a"], ["1"]]), {"xl/media/a.bin": b"x" * 50_000})
    assert _code(data, xlsx_max_uncompressed_bytes=40_000) == "ZIP_BOMB"


def test_too_many_members_is_a_zip_bomb() -> None:
    extra = {f"xl/media/{i}.bin": b"" for i in range(30)}
    assert _code(_rezip(_workbook_bytes([["a"]]), extra), xlsx_max_members=20) == "ZIP_BOMB"


def test_lying_directory_sizes_cannot_inflate_more_than_declared() -> None:
    # The sheet declares 10 bytes uncompressed in the central directory but holds far more.
    data = bytearray(_workbook_bytes([["a"], *[[f"row {i}"] for i in range(2000)]]))
    name = b"xl/worksheets/sheet1.xml"
    entry = data.find(b"PK\x01\x02")
    while data[entry + 46 : entry + 46 + struct.unpack_from("<H", data, entry + 28)[0]] != name:
        entry = data.find(b"PK\x01\x02", entry + 4)
        assert entry >= 0
    struct.pack_into("<I", data, entry + 24, 10)
    assert _code(bytes(data)) == "MALFORMED"


@pytest.mark.parametrize(
    "member", ["../evil.xml", "/etc/evil.xml", "xl/../../evil.xml", "C:/evil.xml", "xl\\..\\evil.xml"]
)
def test_unsafe_member_paths_are_refused(member: str) -> None:
    buffer = io.BytesIO(_workbook_bytes([["a"], ["1"]]))
    with zipfile.ZipFile(buffer, "a") as archive:
        archive.writestr(zipfile.ZipInfo(member), b"<x/>")
    with pytest.raises(PayloadError) as caught:
        decode("xlsx", buffer.getvalue())
    assert caught.value.code == "MALFORMED"
    assert "unsafe member path" in str(caught.value)


def test_member_with_a_dtd_is_refused() -> None:
    data = _workbook_bytes([["a"], ["1"]])
    shared = (
        b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;">]>'
        b'<sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><si><t>&lol2;</t></si></sst>'
    )
    assert _code(_rezip(data, {"xl/sharedStrings.xml": shared})) == "XML_FORBIDDEN"


def test_encrypted_or_non_zip_office_file_is_malformed() -> None:
    ole_header = bytes.fromhex("d0cf11e0a1b11ae1") + b"\0" * 504
    assert _code(ole_header) == "MALFORMED"


def test_truncated_zip_is_malformed() -> None:
    data = SAMPLE.read_bytes()
    for cut in (10, len(data) // 2, len(data) - 30):
        assert _code(data[:cut]) == "MALFORMED"


def test_zip_without_a_workbook_is_malformed() -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("hello.txt", "hi")
    assert _code(buffer.getvalue()) == "MALFORMED"


def test_corrupted_bytes_never_crash() -> None:
    data = SAMPLE.read_bytes()
    rng = random.Random(212)
    for _ in range(300):
        damaged = bytearray(data)
        for _ in range(rng.randint(1, 8)):
            damaged[rng.randrange(len(damaged))] = rng.randrange(256)
        try:
            decode("xlsx", bytes(damaged))
        except PayloadError as error:
            assert error.code in {"MALFORMED", "ZIP_BOMB", "XML_FORBIDDEN", "HEADER_MISSING"}


def test_limits_are_configurable_by_object() -> None:
    limits = DecodeLimits(xlsx_max_members=3)
    with pytest.raises(PayloadError) as caught:
        list(iter_xlsx_rows(SAMPLE, limits))
    assert caught.value.code == "ZIP_BOMB"
