"""The batch-file connector against files the contract allows but the samples do not show.

Each file is dropped as a county bureau drops it (data file, then its ``.ok`` marker) and read by
the production path (real mappings, publisher and SQLite store), so what is asserted is what the
bureau gets back: the result file, the archive, the accepted records.
"""

from __future__ import annotations

import asyncio
import csv
import hashlib
import io
import os
import zipfile
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from xml.sax.saxutils import escape

import pytest
from openpyxl.utils import get_column_letter

from connectors.batch_files.claim import read_marker
from connectors.batch_files.naming import FileRefused
from connectors.batch_files.outcomes import foreign_org_row
from connectors.codecs import cell_text
from tests.unit.test_batch_files import BATCH, TONGLU, XIHU, Harness, drop, make_harness, result_of

BASE = f"{TONGLU}_XZCF_20250612_001"
Cell = str | int | float | tuple[float, int]  # a (serial, numFmtId) pair is a styled number


@pytest.fixture
async def harness(tmp_path: Path) -> AsyncIterator[Harness]:
    h = make_harness(tmp_path)
    yield h
    await asyncio.to_thread(h.engine.dispose)


def sample_table() -> tuple[list[str], list[list[str]]]:
    """Header and the 20 valid rows of the 桐庐县 sample."""
    text = (BATCH / f"{BASE}.csv").read_bytes().decode("gbk")
    rows = list(csv.reader(io.StringIO(text, newline="")))
    return rows[0], rows[1:]


def gbk_csv(header: Sequence[str], rows: Sequence[Sequence[str]]) -> bytes:
    buffer = io.StringIO(newline="")
    csv.writer(buffer, lineterminator="\r\n").writerows([header, *rows])
    return buffer.getvalue().encode("gbk")


def result_lines(h: Harness, provider: str, base: str) -> list[str]:
    return result_of(h, provider, base).split("\r\n")[1:-1]


async def drop_and_scan(h: Harness, name: str, data: bytes, rows: int, provider: str = TONGLU) -> list[str]:
    drop(h.upload(provider), name, data, rows=rows)
    assert await h.scan() == 1
    return result_lines(h, provider, name.rsplit(".", 1)[0])


# -- the .ok marker ------------------------------------------------------------------------------


@pytest.mark.parametrize("template", [
    "{name}|{rows}|{sha}\r\n",          # the contract's form
    "{name}|{rows}|{sha}\n",            # LF
    "{name}|{rows}|{sha}",              # no line end
    "{name}|{rows}|{SHA}\r\n",          # PowerShell's Get-FileHash prints upper case
    " {name} | {rows} | {sha} \r\n\r\n",  # padded, a blank line after
    "\ufeff{name}|{rows}|{sha}\r\n",    # Notepad's UTF-8 BOM
])
async def test_marker_variants_that_say_the_same_thing_are_accepted(harness: Harness, template: str) -> None:
    data = (BATCH / f"{BASE}.csv").read_bytes()
    sha = hashlib.sha256(data).hexdigest()
    up = harness.upload(TONGLU)
    (up / f"{BASE}.csv").write_bytes(data)
    marker = template.format(name=f"{BASE}.csv", rows=20, sha=sha, SHA=sha.upper())
    (up / f"{BASE}.ok").write_bytes(marker.encode("utf-8"))
    assert await harness.scan() == 1
    assert harness.connector.refused == []
    assert len(harness.accepted_ids()) == 20


def test_a_marker_is_read_only_from_a_regular_file_and_bounded(tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.write_bytes(b"x" * 10_000)
    link = tmp_path / "link.ok"
    link.symlink_to(secret)
    fifo = tmp_path / "fifo.ok"
    os.mkfifo(fifo)
    for path in (link, fifo):
        with pytest.raises(FileRefused) as refused:
            read_marker(path)
        assert refused.value.code == "F001"
    assert len(read_marker(secret)) == 1025  # enough to say "too large", never the whole file


# -- CSV rows and their count --------------------------------------------------------------------


@pytest.mark.parametrize("quoted", [False, True])
@pytest.mark.parametrize("tail", [b",,,,,,,,,,,,,,,,,,,,,,,,,\r\n", b",,,,,,,,,,,,,,,,,,,,,,,,,\r\n\r\n,,,\r\n"])
async def test_separator_only_lines_after_the_data_are_not_rows(harness: Harness, quoted: bool, tail: bytes) -> None:
    # Excel's "save as CSV" leaves such lines after a range that once held more rows.
    header, rows = sample_table()
    if quoted:  # the quote-free file is counted on its bytes, the other by the csv reader
        rows[0][header.index("违法事实")] = '经查，当事人"示例"，\r\n续行'
    lines = await drop_and_scan(harness, f"{TONGLU}_XZCF_20250612_030.csv", gbk_csv(header, rows) + tail, 20)
    assert harness.connector.refused == []
    assert len(lines) == 20 and all(",accepted," in line for line in lines)


@pytest.mark.parametrize("counted", [2, 3])
async def test_a_blank_row_between_data_rows_may_be_counted_or_not(harness: Harness, counted: int) -> None:
    header, rows = sample_table()
    data = gbk_csv(header, [rows[0], [""] * len(header), rows[1]])
    lines = await drop_and_scan(harness, f"{TONGLU}_XZCF_20250612_031.csv", data, counted)
    assert harness.connector.refused == []
    assert sorted(harness.accepted_ids()) == ["CF3301222025000101", "CF3301222025000102"]
    assert lines[0].startswith("1,CF3301222025000101,accepted")
    assert lines[-1].startswith("3,CF3301222025000102,accepted")  # the row keeps its place in the file


# -- amounts -------------------------------------------------------------------------------------


async def test_an_amount_with_more_than_two_decimals_is_e106_not_rounded(harness: Harness) -> None:
    header, rows = sample_table()
    column = header.index("罚款金额（元）")
    rows[0][column] = "50000.005"
    rows[1][column] = "1000.000"  # two decimals' worth: the same amount
    lines = await drop_and_scan(harness, f"{TONGLU}_XZCF_20250612_032.csv", gbk_csv(header, rows[:2]), 2)
    assert lines == ["1,CF3301222025000101,rejected,E106,罚款金额（元）“50000.005”不是有效金额",
                     "2,CF3301222025000102,accepted,,"]


# -- XLSX ----------------------------------------------------------------------------------------

_MAIN = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
_REL = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
_PKG = "http://schemas.openxmlformats.org/package/2006/relationships"
# cellXfs: 0 General, then one style per number format id used in tests (14 is the short date;
# 31 and 57 are zh-CN built-ins that the workbook names by id only).
_STYLE_OF = {14: 1, 31: 2, 57: 3}


def _cell(ref: str, value: Cell, strings: list[str], *, inline: bool) -> str:
    if value == "":
        return ""
    if isinstance(value, tuple):
        serial, format_id = value
        return f'<c r="{ref}" s="{_STYLE_OF[format_id]}"><v>{serial}</v></c>'
    if isinstance(value, int | float):
        return f'<c r="{ref}"><v>{value!r}</v></c>'
    if inline:
        return f'<c r="{ref}" t="inlineStr"><is><t xml:space="preserve">{escape(value)}</t></is></c>'
    strings.append(value)
    return f'<c r="{ref}" t="s"><v>{len(strings) - 1}</v></c>'


def workbook(sheets: Sequence[tuple[str, Sequence[Sequence[Cell]]]], *, inline: bool = False) -> bytes:
    """A minimal XLSX as Excel/WPS write it (shared or inline strings, styled date serials)."""
    strings: list[str] = []
    parts: dict[str, str] = {}
    for number, (_, rows) in enumerate(sheets, 1):
        body = "".join(
            f'<row r="{r}">' + "".join(_cell(f"{get_column_letter(c)}{r}", v, strings, inline=inline)
                                       for c, v in enumerate(row, 1)) + "</row>"
            for r, row in enumerate(rows, 1))
        parts[f"xl/worksheets/sheet{number}.xml"] = (
            f'<worksheet xmlns="{_MAIN}"><sheetData>{body}</sheetData></worksheet>')
    count = len(sheets)
    listed = "".join(f'<sheet name="{escape(title)}" sheetId="{n}" r:id="rId{n}"/>'
                     for n, (title, _) in enumerate(sheets, 1))
    parts["xl/workbook.xml"] = f'<workbook xmlns="{_MAIN}" xmlns:r="{_REL}"><sheets>{listed}</sheets></workbook>'
    links = "".join(f'<Relationship Id="rId{n}" Type="{_REL}/worksheet" Target="worksheets/sheet{n}.xml"/>'
                    for n in range(1, count + 1))
    links += (f'<Relationship Id="rId{count + 1}" Type="{_REL}/styles" Target="styles.xml"/>'
              f'<Relationship Id="rId{count + 2}" Type="{_REL}/sharedStrings" Target="sharedStrings.xml"/>')
    parts["xl/_rels/workbook.xml.rels"] = f'<Relationships xmlns="{_PKG}">{links}</Relationships>'
    parts["_rels/.rels"] = (f'<Relationships xmlns="{_PKG}"><Relationship Id="rId1" Type="{_REL}/officeDocument"'
                            ' Target="xl/workbook.xml"/></Relationships>')
    xfs = '<xf numFmtId="0"/>' + "".join(f'<xf numFmtId="{i}" applyNumberFormat="1"/>' for i in _STYLE_OF)
    parts["xl/styles.xml"] = (f'<styleSheet xmlns="{_MAIN}"><fonts count="1"><font/></fonts>'
                              '<fills count="1"><fill><patternFill patternType="none"/></fill></fills>'
                              '<borders count="1"><border/></borders><cellStyleXfs count="1"><xf/></cellStyleXfs>'
                              f'<cellXfs count="{len(_STYLE_OF) + 1}">{xfs}</cellXfs></styleSheet>')
    shared = "".join(f'<si><t xml:space="preserve">{escape(s)}</t></si>' for s in strings)
    parts["xl/sharedStrings.xml"] = f'<sst xmlns="{_MAIN}" count="{len(strings)}">{shared}</sst>'
    types = "".join(f'<Override PartName="/xl/worksheets/sheet{n}.xml" ContentType="application/'
                    'vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>' for n in range(1, count + 1))
    parts["[Content_Types].xml"] = (
        '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
        '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
        '<Default Extension="xml" ContentType="application/xml"/>'
        '<Override PartName="/xl/workbook.xml" '
        'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
        '<Override PartName="/xl/styles.xml" '
        'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.styles+xml"/>'
        '<Override PartName="/xl/sharedStrings.xml" '
        'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sharedStrings+xml"/>'
        + types + "</Types>")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in parts.items():
            archive.writestr(name, '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>' + content)
    return buffer.getvalue()


def sheet_rows(**columns: Cell) -> tuple[list[str], list[list[Cell]]]:
    """Header and three sample rows, with the named columns (NFKC header names) set in each."""
    header, rows = sample_table()
    table: list[list[Cell]] = [list(row) for row in rows[:3]]
    for name, value in columns.items():
        position = header.index(name)
        for row in table:
            if row[position] != "":
                row[position] = value
    return header, table


@pytest.mark.parametrize("inline", [False, True])
@pytest.mark.parametrize("decided", [(45810, 31), (45810, 57), 45810], ids=["yyyy年m月d日", "yyyy年m月", "General"])
async def test_xlsx_date_cells_in_zh_cn_builtin_formats_are_dates(
        harness: Harness, decided: Cell, inline: bool) -> None:
    header, rows = sheet_rows(处罚决定日期=decided)
    data = workbook([("行政处罚", [header, *rows])], inline=inline)
    lines = await drop_and_scan(harness, f"{TONGLU}_XZCF_20250612_040.xlsx", data, 3)
    assert lines == ["1,CF3301222025000101,accepted,,", "2,CF3301222025000102,accepted,,",
                     "3,CF3301222025000103,accepted,,"]


async def test_xlsx_numbers_stored_as_floats_read_as_excel_shows_them(harness: Harness) -> None:
    # Exporters that write every number as a double (pandas with an empty cell in the column) give
    # 330122.0 for the division code and 1234.5600000000001 for a computed amount.
    header, rows = sheet_rows()
    for row in rows:
        row[header.index("行政区划代码")] = 330122.0
        row[header.index("监管事项编码")] = float(str(row[header.index("监管事项编码")]))
    rows[0][header.index("罚款金额（元）")] = 1234.5600000000001
    rows[0][header.index("处罚内容")] = "罚款1234.56元"
    rows[0][header.index("处罚类别")] = "罚款"
    rows[0][header.index("没收违法所得、没收非法财物金额（元）")] = ""
    lines = await drop_and_scan(harness, f"{TONGLU}_XZCF_20250612_041.xlsx",
                                workbook([("行政处罚", [header, *rows])]), 3)
    assert all(",accepted," in line for line in lines), lines
    assert cell_text(1234.5600000000001) == "1234.56"
    assert cell_text(330122.0) == "330122"


async def test_xlsx_data_sheet_is_found_after_a_notes_sheet(harness: Harness) -> None:
    header, rows = sheet_rows()
    data = workbook([("填写说明", [["请按模板填写"]]), ("行政处罚", [header, *rows])])
    lines = await drop_and_scan(harness, f"{TONGLU}_XZCF_20250612_042.xlsx", data, 3)
    assert harness.connector.refused == []
    assert len(lines) == 3 and all(",accepted," in line for line in lines)


# -- the result file -----------------------------------------------------------------------------


async def test_the_result_file_is_gbk_even_when_a_value_is_not(harness: Harness) -> None:
    # An XML file (GB18030-declared) may carry a character GBK lacks; quoted in a message, it must
    # not turn the result file into GB18030 that a GBK reader cannot open.
    base = f"{XIHU}_XZCF_20250620_001"
    text = (BATCH / f"{base}.xml").read_bytes().decode("gbk")
    text = text.replace('encoding="GBK"', 'encoding="GB18030"')
    text = text.replace("<CFLB>警告;罚款</CFLB>", "<CFLB>警告\U00020bb7</CFLB>")
    name = f"{XIHU}_XZCF_20250620_002.xml"
    drop(harness.upload(XIHU), name, text.encode("gb18030"), rows=3)
    assert await harness.scan() == 1
    produced = (harness.root / XIHU / "result" / f"{XIHU}_XZCF_20250620_002.result.csv").read_bytes()
    lines = produced.decode("gbk").split("\r\n")  # strict: raises on a four-byte GB18030 sequence
    assert lines[1] == "1,CF3301062025000118,rejected,E104,处罚类别“警告?”不在代码表中"


async def test_rows_without_the_separators_of_trailing_blank_cells_are_read(harness: Harness) -> None:
    # Excel drops the trailing separators of blank trailing cells (备注) in some rows of a CSV it
    # saves; such a row is the row's business, not a broken file.
    header, rows = sample_table()
    assert header[-1] == "备注"
    for row in rows:
        row[-1] = ""
    text = gbk_csv(header, rows).decode("gbk").split("\r\n")
    data = "\r\n".join([*text[:17], *(line.removesuffix(",") for line in text[17:])]).encode("gbk")
    lines = await drop_and_scan(harness, f"{TONGLU}_XZCF_20250612_033.csv", data, 20)
    assert harness.connector.refused == []
    assert len(lines) == 20 and all(",accepted," in line for line in lines)


@pytest.mark.timeout(20)
async def test_a_fifo_dropped_as_a_data_file_is_refused_without_blocking(harness: Harness) -> None:
    name = f"{TONGLU}_XZCF_20250612_034.csv"
    up = harness.upload(TONGLU)
    os.mkfifo(up / name)  # opening it for reading would wait for a writer that never comes
    (up / f"{TONGLU}_XZCF_20250612_034.ok").write_bytes(f"{name}|1|{'0' * 64}\r\n".encode())
    assert await harness.scan() == 1
    assert harness.connector.refused == [(f"{TONGLU}_XZCF_20250612_034", "F005")]
    assert (harness.root / TONGLU / "failed" / name).exists()


async def test_a_malformed_supervision_item_code_is_not_reported_as_a_uscc_error(harness: Harness) -> None:
    header, rows = sample_table()
    rows[0][header.index("监管事项编码")] = "3100000010010X"
    lines = await drop_and_scan(harness, f"{TONGLU}_XZCF_20250612_035.csv", gbk_csv(header, rows[:1]), 1)
    assert lines[0].startswith("1,CF3301222025000101,rejected,E104,监管事项编码“3100000010010X”"), lines


def test_a_row_decided_by_a_body_the_provider_does_not_submit_for_is_e110() -> None:
    subordinates = {TONGLU: ("12330122MB1234567X",)}
    assert foreign_org_row(1, "K1", f" {TONGLU.lower()} ", TONGLU, subordinates) is None
    assert foreign_org_row(2, "K2", "12330122MB1234567X", TONGLU, subordinates) is None
    assert foreign_org_row(3, "K3", "", TONGLU, subordinates) is None  # E101 is the mapping's
    foreign = foreign_org_row(4, "K4", XIHU, TONGLU, subordinates)
    assert foreign is not None
    assert foreign.cells() == ["4", "K4", "rejected", "E110",
                               f"处罚机关统一社会信用代码“{XIHU}”与报送单位“{TONGLU}”不符（既非本单位也非其下级单位）"]


async def test_processed_files_are_archived_where_the_contract_says(harness: Harness) -> None:
    # "{exchange_root}/{provider_uscc}/archive/: gateway moves processed data + .ok here", in a
    # folder of the day (Asia/Shanghai) as issue #4 asks
    header, rows = sample_table()
    name = f"{TONGLU}_XZCF_20250612_036.csv"
    await drop_and_scan(harness, name, gbk_csv(header, rows[:2]), 2)
    archive = harness.root / TONGLU / "archive"
    (day,) = archive.iterdir()
    assert len(day.name) == 8 and day.name.isdigit()
    assert sorted(p.name for p in day.iterdir()) == [name, name.replace(".csv", ".ok")]
    assert not any((harness.root / TONGLU / "upload").iterdir())


async def test_header_names_wrapped_or_spaced_inside_still_match(harness: Harness) -> None:
    # Templates wrap long headers (Alt+Enter in Excel) and pad them; the names are the same.
    header, rows = sample_table()
    header = [name.replace("（元）", "\n（元）").replace("处罚决定日期", "处罚决定 日期").replace("备注", "备\u3000注")
              for name in header]
    lines = await drop_and_scan(harness, f"{TONGLU}_XZCF_20250612_037.csv", gbk_csv(header, rows[:2]), 2)
    assert harness.connector.refused == []
    # no "提示" (PEN-005, fine missing): the wrapped amount column was read too
    assert lines == ["1,CF3301222025000101,accepted,,", "2,CF3301222025000102,accepted,,"]


# -- the connector: which files and rows it takes ------------------------------------------------


@pytest.mark.timeout(20)
async def test_a_marker_that_is_a_fifo_is_refused_without_blocking(harness: Harness) -> None:
    header, rows = sample_table()
    name = f"{TONGLU}_XZCF_20250612_040.csv"
    up = harness.upload(TONGLU)
    (up / name).write_bytes(gbk_csv(header, rows[:1]))
    os.mkfifo(up / f"{TONGLU}_XZCF_20250612_040.ok")  # reading it would wait for a writer
    assert await harness.scan() == 1
    assert harness.connector.refused == [(f"{TONGLU}_XZCF_20250612_040", "F001")]
    assert harness.accepted_ids() == []


async def test_the_base_name_is_the_idempotency_key_whatever_the_format(harness: Harness) -> None:
    # "a re-dropped name with a different SHA-256 is a file error F006": the same base as .xml
    header, rows = sample_table()
    base = f"{TONGLU}_XZCF_20250612_041"
    await drop_and_scan(harness, f"{base}.csv", gbk_csv(header, rows[:2]), 2)
    drop(harness.upload(TONGLU), f"{base}.xml", b"<DataPackage/>", rows=0)
    assert await harness.scan() == 1
    assert harness.connector.refused == [(base, "F006")]
    assert (harness.root / TONGLU / "failed" / f"{base}.xml").exists()
    assert ",rejected,F006," in result_of(harness, TONGLU, base)
    assert len(harness.accepted_ids()) == 2


async def test_two_data_files_for_one_marker_are_refused(harness: Harness) -> None:
    header, rows = sample_table()
    base = f"{TONGLU}_XZCF_20250612_042"
    up = harness.upload(TONGLU)
    data = gbk_csv(header, rows[:1])
    (up / f"{base}.xml").write_bytes(b"<DataPackage/>")
    drop(up, f"{base}.csv", data, rows=1)
    assert await harness.scan() == 1
    assert harness.connector.refused == [(base, "F005")]
    failed = {p.name for p in (harness.root / TONGLU / "failed").iterdir()}
    assert {f"{base}.csv", f"{base}.ok", f"{base}.xml"} <= failed, failed
    assert not any(up.iterdir()) and harness.accepted_ids() == []


async def test_rows_decided_by_another_body_are_e110_unless_the_provider_submits_for_it(tmp_path: Path) -> None:
    header, rows = sample_table()
    org = header.index("处罚机关统一社会信用代码")
    other = "12330122MB0000000F"  # 桐庐 submits for this body only once configured
    rows = [list(r) for r in rows[:3]]
    rows[1][org] = other
    rows[2][org] = "12330122MB0000000Y"  # a wrong check character: the mapping's E102, not E110
    for subordinates, expected in (({}, "rejected,E110"), ({TONGLU: [other]}, "accepted,,")):
        (tmp_path / str(len(subordinates))).mkdir()
        h = make_harness(tmp_path / str(len(subordinates)), subordinates=subordinates)
        try:
            lines = await drop_and_scan(h, f"{TONGLU}_XZCF_20250612_043.csv", gbk_csv(header, rows), 3)
        finally:
            await asyncio.to_thread(h.engine.dispose)
        assert lines[0].startswith("1,") and ",accepted,," in lines[0]
        assert lines[1].startswith(f"2,{rows[1][header.index('处罚行为编号')]},{expected}"), lines[1]
        assert ",rejected,E102," in lines[2], lines[2]
