"""A row's outcome as the result file states it: the contract's E codes and Chinese messages.

The standard's findings are summarised for bureau staff: REQUIRED -> E101; IDENTIFIER_* on a
USCC -> E102, on an ID number -> E103, on a division code -> E109 (the counterparty's USCC and ID
number are checked by rules CPT-001/CPT-002: E102/E103); CODE_UNKNOWN -> E104; TYPE on a date ->
E105, on money -> E106, on another coded value -> E104; MAX_LENGTH -> E107; other RULE:* errors ->
E110. Messages name the column (Chinese header) and the value, never a natural person's ID number.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from stdnum.cn import uscc

from connectors.base import ReceiptError, RecordReceipt

ACCEPTED = "accepted"
REJECTED = "rejected"
# Measures that are not administrative penalties (2021 行政处罚法 art. 9 / 28): said so in the message.
NOT_PENALTIES = frozenset({"责令改正", "责令限期改正", "责令停止违法行为", "限期整改", "批评教育"})
_COLUMN = re.compile(r"column (?P<column>.+)$")
_QUOTED = re.compile(r"“([^”]*)”")
_USCC_HINT = ("uscc", "统一社会信用代码", "SHXYM", "TYSHXYDM", "CFJGDM")
_ID_HINT = ("证件号码", "ZJHM", "SFZ", "person_id_no", "id_no")
_DATE_SUFFIXES = ("_at", "_on", "_date", "_from", "_to", "_until")


@dataclass(frozen=True, slots=True)
class ResultRow:
    row: int
    key: str
    status: str
    codes: str
    message: str

    def cells(self) -> list[str]:
        return [str(self.row), self.key, self.status, self.codes, self.message]


def column_of(error: ReceiptError, labels: Mapping[str, str]) -> str | None:
    """The source column a finding is about: ``row N, column H`` for tables, a JSON path's last
    step for XML records; XML element names shown by their Chinese label."""
    location = error.location or ""
    match = _COLUMN.search(location)
    if match:
        column = match["column"]
    elif location and "$" in location:
        column = re.split(r"[.\[\]:$]+", location.strip("]"))[-1]
    else:
        return None
    return labels.get(column, column) or None


def e_code(error: ReceiptError, column: str | None) -> str:
    code, field = error.code, error.field or ""
    probe = f"{field} {column or ''}"
    if code == "REQUIRED":
        return "E101"
    if code == "RULE:CPT-001":
        return "E102"
    if code == "RULE:CPT-002":
        return "E103"
    if code.startswith("IDENTIFIER_"):
        if "division" in field or "区划" in (column or "") or "DFBM" in probe:
            return "E109"
        if "supervision_item" in field:  # a code of the supervision-item catalogue, not a USCC
            return "E104"
        if any(h in probe for h in _USCC_HINT):
            return "E102"
        return "E103" if any(h in probe for h in _ID_HINT) else "E102"
    if code == "CODE_UNKNOWN":
        return "E104"
    if code == "TYPE":
        if _is_money(field, error.message_en):
            return "E106"
        return "E105" if _is_date(field, error.message_en) else "E104"
    if code == "MAX_LENGTH":
        return "E107"
    return "E110"


def _is_money(field: str, message_en: str) -> bool:
    return field.endswith("_yuan") or "amount" in field or "decimal" in message_en


def _is_date(field: str, message_en: str) -> bool:
    return field.endswith(_DATE_SUFFIXES) or "date" in message_en


def mask_id(value: str) -> str:
    """An ID number as a message may show it: the first 4 and last 4 characters."""
    return value[:4] + "*" * max(len(value) - 8, 0) + value[-4:] if len(value) > 8 else "*" * len(value)


def message_for(code: str, error: ReceiptError, column: str | None, cell: str) -> str:
    quoted = _QUOTED.search(error.message_zh)
    value = cell or (quoted.group(1) if quoted else "")
    col = column or error.field or ""
    if code == "E101":
        return f"必填项“{col}”为空"
    if code == "E102":
        detail = "校验位错误" if "CHECKSUM" in error.message_en or "校验位" in error.message_zh else "格式错误"
        return f"{col}“{value}”{detail}" if value else f"{col}{detail}"
    if code == "E103":
        return f"{col}“{mask_id(value)}”校验错误" if value else f"{col}校验错误"
    if code == "E104":
        shown = quoted.group(1) if quoted else value
        note = f"（{shown}不属于行政处罚种类）" if shown in NOT_PENALTIES else ""
        return f"{col}“{shown}”不在代码表中{note}"
    if code == "E105":
        return f"{col}“{value}”不是有效日期"
    if code == "E106":
        return f"{col}“{value}”不是有效金额"
    if code == "E107":
        return f"{col}长度超过上限"
    if code == "E109":
        return f"{col}“{value}”不是有效的行政区划代码"
    return error.message_zh


def summarise(errors: Iterable[ReceiptError], row: Mapping[str, str],
              labels: Mapping[str, str]) -> tuple[str, str]:
    """Codes joined by ``;`` and messages by ``；``, each once, in the order found."""
    codes: list[str] = []
    messages: list[str] = []
    for error in errors:
        column = column_of(error, labels)
        source = _source_column(error, labels)
        cell = row.get(source, "") if source else ""
        code = e_code(error, column)
        message = message_for(code, error, column, cell.strip() if isinstance(cell, str) else "")
        if code not in codes:
            codes.append(code)
        if message not in messages:
            messages.append(message)
    return ";".join(codes), "；".join(messages)


def _source_column(error: ReceiptError, labels: Mapping[str, str]) -> str | None:
    location = error.location or ""
    match = _COLUMN.search(location)
    if match:
        return match["column"]
    if "$" in location:
        return re.split(r"[.\[\]:$]+", location.strip("]"))[-1] or None
    return None


def result_for(receipt: RecordReceipt, row_no: int, key: str, row: Mapping[str, str], *,
               labels: Mapping[str, str], silent_warnings: frozenset[str], resumed: bool) -> ResultRow:
    """The result line of one published row. A ``duplicate`` is a row the data centre already
    holds (in-file duplicates never reach ingest): re-published after a crash, it is simply
    accepted; otherwise the message says it was already received."""
    if receipt.status == "rejected":
        codes, message = summarise(receipt.errors, row, labels)
        return ResultRow(row_no, key, REJECTED, codes, message)
    if receipt.status == "duplicate":
        note = "" if resumed else "与此前已接收的记录完全相同，未重复入库"
        return ResultRow(row_no, key, ACCEPTED, "", note)
    hints = [w.message_zh for w in receipt.warnings if w.code not in silent_warnings]
    message = "提示：" + "；".join(dict.fromkeys(hints)) if hints else ""
    return ResultRow(row_no, key, ACCEPTED, "", message)


def foreign_org_row(row_no: int, key: str, org_uscc: str, provider: str,
                    subordinates: Mapping[str, Sequence[str]]) -> ResultRow | None:
    """A row whose deciding body is neither the file's provider nor one it submits for (contract:
    provider_uscc "must equal 处罚机关统一社会信用代码 or be its superior (configured)"): E110.
    None when the row may be submitted, or has no valid such USCC (E101 and E102 are the
    mapping's to report)."""
    org = org_uscc.strip().upper()
    if not org or org == provider or org in subordinates.get(provider, ()):
        return None
    if not uscc.is_valid(org):  # a typo, not another body: the mapping's E102 says so (python-stdnum's
        return None             # check is enough to tell; the standard's own is the mapping's, not ours)
    return ResultRow(row_no, key, REJECTED, "E110",
                     f"处罚机关统一社会信用代码“{org}”与报送单位“{provider}”不符（既非本单位也非其下级单位）")


def duplicate_row(row_no: int, key: str, first_row: int) -> ResultRow:
    return ResultRow(row_no, key, REJECTED, "E108", f"与第{first_row}行重复（处罚行为编号相同）")


def file_failure(code: str, message: str) -> ResultRow:
    return ResultRow(0, "", REJECTED, code, message)
