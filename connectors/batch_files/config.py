"""Options of the batch-file connector (contract: shared/sources/batch-files/README.md)."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

MIB = 1024 * 1024

# The contract's required (Y) columns, as the csv codec normalises headers (NFKC, trimmed).
PENALTY_REQUIRED_COLUMNS: tuple[str, ...] = (
    "行政相对人名称", "行政相对人类别", "处罚决定书文号", "处罚类别", "处罚决定日期", "违法事实", "处罚依据",
    "处罚内容", "处罚程序", "是否听证", "是否涉刑", "处罚行为编号", "处罚行为名称", "监管事项编码",
    "检查行为编号", "案件来源", "行政区划代码", "处罚机关", "处罚机关统一社会信用代码",
)

# XML element -> the Chinese header a bureau knows (result messages name the column in Chinese).
PENALTY_XML_LABELS: dict[str, str] = {
    "XDRMC": "行政相对人名称", "XDRLB": "行政相对人类别", "TYSHXYDM": "统一社会信用代码", "FDDBR": "法定代表人",
    "ZJLX": "证件类型", "ZJHM": "证件号码", "CFJDSWH": "处罚决定书文号", "CFLB": "处罚类别",
    "FKJE": "罚款金额（元）", "MSJE": "没收违法所得、没收非法财物金额（元）", "CFJDRQ": "处罚决定日期",
    "WFSS": "违法事实", "CFYJ": "处罚依据", "CFNR": "处罚内容", "CFCX": "处罚程序", "SFTZ": "是否听证",
    "SFSX": "是否涉刑", "CFXWBH": "处罚行为编号", "CFXWMC": "处罚行为名称", "JGSXBM": "监管事项编码",
    "JCXWBH": "检查行为编号", "AJLY": "案件来源", "XZQHDM": "行政区划代码", "CFJG": "处罚机关",
    "CFJGDM": "处罚机关统一社会信用代码", "BZ": "备注",
    # The codecs NFKC-normalise headers (half-width brackets); messages name them as the template does.
    "罚款金额(元)": "罚款金额（元）", "没收违法所得、没收非法财物金额(元)": "没收违法所得、没收非法财物金额（元）",
}


class BatchFilesConfig(BaseModel):
    """Where to watch, how to read, and how a file kind/format chooses its mapping variant."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    exchange_root: Path
    # Provider folders to watch; empty = every folder under exchange_root.
    providers: tuple[str, ...] = ()
    poll_interval_s: float = Field(default=5.0, gt=0)
    # Rows per envelope: one durable write and one checkpoint per chunk.
    chunk_rows: int = Field(default=500, ge=1, le=5000)
    # None = detected (UTF-8 with or without BOM, else GB18030 which covers GBK).
    encoding: str | None = None
    max_bytes: int = Field(default=20 * MIB, ge=1)
    max_rows: int = Field(default=50_000, ge=1)
    xlsx_max_uncompressed_bytes: int = Field(default=256 * MIB, ge=1)
    xlsx_max_ratio: int = Field(default=200, ge=1)
    marker_max_age_s: float = Field(default=24 * 3600, gt=0)
    store_retry_s: float = Field(default=2.0, gt=0)
    # "{kind}.{ext}" -> the mapping variant set in meta["variant"].
    variants: dict[str, str] = Field(default_factory=lambda: {
        "XZCF.csv": "csv", "XZCF.xlsx": "xlsx", "XZCF.xml": "xml",
        "SGSCF1.csv": "credit-cf-v1", "SGSXK1.csv": "credit-xk-v1",
    })
    # variant -> the column identifying a row (处罚行为编号): in-file duplicates (E108) and the
    # result file's second column. A variant without one is not checked for in-file duplicates.
    key_columns: dict[str, str] = Field(default_factory=lambda: {
        "csv": "处罚行为编号", "xlsx": "处罚行为编号", "xml": "CFXWBH",
    })
    # variant -> columns the header must have (F004).
    required_columns: dict[str, tuple[str, ...]] = Field(default_factory=lambda: {
        "csv": PENALTY_REQUIRED_COLUMNS, "xlsx": PENALTY_REQUIRED_COLUMNS,
    })
    # variant -> the column holding the deciding body's USCC (处罚机关统一社会信用代码): it must be the
    # providing bureau of the file name or a body that bureau submits for (``subordinates``).
    org_columns: dict[str, str] = Field(default_factory=lambda: {
        "csv": "处罚机关统一社会信用代码", "xlsx": "处罚机关统一社会信用代码", "xml": "CFJGDM",
    })
    # provider USCC -> the USCCs of bodies whose decisions it may submit (the contract's "superior
    # (configured)"); a provider always submits its own.
    subordinates: dict[str, tuple[str, ...]] = Field(default_factory=dict)
    # source column -> Chinese label used in result messages (XML elements, v1 codes).
    column_labels: dict[str, str] = Field(default_factory=lambda: dict(PENALTY_XML_LABELS))
    # Warnings that are not the bureau's to act on (BEH-001: the inspection may still be to come)
    # are left out of the result file.
    silent_warnings: tuple[str, ...] = ("RULE:BEH-001",)
