"""Data quality per department over a period, the way the province evaluates its departments.

For a period of Asia/Shanghai dates ``[from, to]`` (both included):

- **validity**: accepted / (accepted + rejected by the gateway). Rejections by a target are
  counted apart (``remote_rejected``): those records were valid to the standard.
- **rejection reasons**: findings of the period's rejections by error code, with a Chinese label.
- **duplicates**: exact re-sends dropped by ingest.
- **timeliness**: the data centre refuses a decision reported more than 7 working days after it
  was made (DC009 超期报送, ``sources/data-centre``). A first report (operation ``i``) of a kind with
  a decision date (penalty ``decided_at``, 双公示 ``decided_on``) is timely when its Asia/Shanghai
  date of acceptance is at most ``REPORTING_WORKING_DAYS`` working days after the decision date.
- **rejections open and overdue** now (past their 5-working-day due date).

Everything is aggregated in SQL (GROUP BY over indexed columns); only the groups come back, so
the cost does not grow with the number of records in Python. Timeliness groups by (decision
date, acceptance date), a few hundred groups for a month, and applies the working-day calendar
to each group.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Date, Engine, cast, func, select, text, true
from sqlalchemy.engine import Connection

from gateway.backlog import Backlog
from gateway.stores.db import translate_errors
from gateway.stores.rejections import WorkingDays
from gateway.stores.schema import accepted_records, journeys, rejections

SHANGHAI = ZoneInfo("Asia/Shanghai")
REPORTING_WORKING_DAYS = 7
DECISION_DATE_FIELDS = {"penalty": "decided_at", "credit_penalty": "decided_on", "credit_license": "decided_on"}
NO_DEPARTMENT = ""
BY_COLUMNS = (text("1"), text("2"), text("3"))
DUPLICATE_STEP_LITERAL = text("journeys.event = 'duplicate'")  # a literal, as ix_journeys_duplicates' predicate

CODE_LABELS_ZH = {
    "KIND_UNKNOWN": "记录类型不存在", "VERSION_UNSUPPORTED": "标准版本不支持", "UNKNOWN_FIELD": "未定义的字段",
    "REQUIRED": "必填项为空", "TYPE": "类型或格式不规范", "MAX_LENGTH": "长度超限", "PATTERN": "格式不符合规则",
    "RANGE": "数值超出范围", "MIN_ITEMS": "列表项过少", "MAX_ITEMS": "列表项过多", "CODE_UNKNOWN": "代码值不规范",
    "CODE_AMBIGUOUS": "代码值有歧义", "IDENTIFIER_FORMAT": "证件号码或代码格式错误",
    "IDENTIFIER_CHECKSUM": "统一社会信用代码/身份证件号码校验错误", "PAYLOAD_TOO_LARGE": "数据过大",
    "TARGET_REJECTED": "目标系统拒收", "DC001": "必填项为空", "DC002": "格式不规范（类型、长度、日期）",
    "DC003": "代码值不规范", "DC004": "统一社会信用代码/身份证件号码校验错误",
    "DC005": "逻辑错误（日期先后、金额与种类）",
    "DC006": "重复数据", "DC007": "关联数据缺失", "DC008": "更新或删除的数据不存在",
    "DC009": "超期报送（作出决定后超过7个工作日报送）", "DC099": "其他",
}


@dataclass(frozen=True, slots=True)
class Period:
    start: date
    end: date

    @property
    def since(self) -> datetime:
        return datetime.combine(self.start, time(), SHANGHAI).astimezone(UTC)

    @property
    def until(self) -> datetime:
        return datetime.combine(self.end + timedelta(days=1), time(), SHANGHAI).astimezone(UTC)

    @classmethod
    def last_days(cls, days: int, today: date) -> Period:
        return cls(today - timedelta(days=days - 1), today)


@dataclass(slots=True)
class Reason:
    code: str
    count: int
    label_zh: str

    def as_dict(self) -> dict[str, Any]:
        return {"code": self.code, "count": self.count, "label_zh": self.label_zh}


@dataclass(slots=True)
class DepartmentQuality:
    department: str
    accepted: int = 0
    rejected: int = 0
    remote_rejected: int = 0
    duplicates: int = 0
    timely: int = 0
    late: int = 0
    open_rejections: int = 0
    overdue_rejections: int = 0
    reasons: list[Reason] = field(default_factory=list)

    @property
    def validity_rate(self) -> float | None:
        total = self.accepted + self.rejected
        return round(self.accepted / total, 4) if total else None

    @property
    def timeliness_rate(self) -> float | None:
        total = self.timely + self.late
        return round(self.timely / total, 4) if total else None

    def as_dict(self) -> dict[str, Any]:
        return {
            "department": self.department, "accepted": self.accepted, "rejected": self.rejected,
            "remote_rejected": self.remote_rejected, "duplicates": self.duplicates,
            "validity_rate": self.validity_rate,
            "timeliness": {"timely": self.timely, "late": self.late, "rate": self.timeliness_rate,
                           "deadline_working_days": REPORTING_WORKING_DAYS},
            "open_rejections": self.open_rejections, "overdue_rejections": self.overdue_rejections,
            "rejection_reasons": [r.as_dict() for r in self.reasons],
        }


class QualityReport:
    def __init__(self, engine: Engine, calendar: WorkingDays, backlog: Backlog) -> None:
        self._engine = engine
        self._calendar = calendar
        self._backlog = backlog

    def compute(self, period: Period, departments: Iterable[str] = (), only: str | None = None,
                today: date | None = None) -> list[DepartmentQuality]:
        """One entry per department seen in the period or named in ``departments`` (``only``: that one)."""
        figures: dict[str, DepartmentQuality] = {}

        def of(dept: Any) -> DepartmentQuality:
            key = str(dept or NO_DEPARTMENT)
            return figures.setdefault(key, DepartmentQuality(key))

        for dept in [only] if only is not None else departments:
            of(dept)
        with translate_errors("computing data quality"), self._engine.connect() as conn:
            for dept, n in self._accepted(conn, period, only):
                of(dept).accepted = int(n)
            for dept, remote, n in self._rejected(conn, period, only):
                if remote:
                    of(dept).remote_rejected += int(n)
                else:
                    of(dept).rejected += int(n)
            for dept, n in self._duplicates(conn, period, only):
                of(dept).duplicates = int(n)
            for dept, code, n, example in self._reasons(conn, period, only):
                label = CODE_LABELS_ZH.get(str(code)) or str(example or code)
                of(dept).reasons.append(Reason(str(code), int(n), label))
            self._timeliness(conn, period, only, of)
        open_, overdue = self._backlog.rejections(today or datetime.now(SHANGHAI).date())
        for dept, n in open_.items():
            if only is None or dept == only:
                of(dept).open_rejections = n
                of(dept).overdue_rejections = overdue.get(dept, 0)
        for item in figures.values():
            item.reasons.sort(key=lambda r: (-r.count, r.code))
        return sorted(figures.values(), key=lambda q: q.department)

    @staticmethod
    def _scoped(column: Any, only: str | None) -> Any:
        return true() if only is None else column == only

    def _accepted(self, conn: Connection, period: Period, only: str | None) -> Any:
        t = accepted_records
        return conn.execute(select(t.c.department, func.count()).where(
            t.c.accepted_at >= period.since, t.c.accepted_at < period.until, self._scoped(t.c.department, only)
        ).group_by(t.c.department)).all()

    def _rejected(self, conn: Connection, period: Period, only: str | None) -> Any:
        r = rejections
        remote = r.c.target.is_not(None).label("remote")
        return conn.execute(select(r.c.department, remote, func.count()).where(
            r.c.rejected_at >= period.since, r.c.rejected_at < period.until, self._scoped(r.c.department, only)
        ).group_by(r.c.department, remote)).all()

    def _duplicates(self, conn: Connection, period: Period, only: str | None) -> Any:
        j, a = journeys, accepted_records
        return conn.execute(select(a.c.department, func.count()).select_from(
            j.join(a, a.c.record_id == j.c.record_id)).where(
            DUPLICATE_STEP_LITERAL, j.c.at >= period.since, j.c.at < period.until,
            self._scoped(a.c.department, only)).group_by(a.c.department)).all()

    def _reasons(self, conn: Connection, period: Period, only: str | None) -> Any:
        r = rejections
        if conn.dialect.name == "postgresql":
            element = func.jsonb_array_elements(r.c.errors).table_valued("value").alias("e")
            code: Any = element.c.value.op("->>")("code")
            message: Any = element.c.value.op("->>")("message_zh")
        else:
            element = func.json_each(r.c.errors).table_valued("value").alias("e")
            code, message = func.json_extract(element.c.value, "$.code"), func.json_extract(element.c.value,
                                                                                              "$.message_zh")
        return conn.execute(select(r.c.department, code, func.count(), func.min(message)).select_from(r).join(
            element, true()).where(r.c.rejected_at >= period.since, r.c.rejected_at < period.until,
                                   self._scoped(r.c.department, only)).group_by(*BY_COLUMNS[:2])).all()

    def _timeliness(self, conn: Connection, period: Period, only: str | None, of: Any) -> None:
        t = accepted_records
        decided = func.coalesce(t.c.record["decided_at"].as_string(), t.c.record["decided_on"].as_string())
        if conn.dialect.name == "postgresql":
            reported: Any = cast(func.timezone("Asia/Shanghai", t.c.accepted_at), Date)
        else:
            reported = func.date(t.c.accepted_at, "+8 hours")
        stmt = select(t.c.department, decided, reported, func.count()).where(
            t.c.accepted_at >= period.since, t.c.accepted_at < period.until, t.c.operation == "i",
            t.c.kind.in_(list(DECISION_DATE_FIELDS)), self._scoped(t.c.department, only),
        ).group_by(*BY_COLUMNS[:3])  # by position: the expressions carry bound parameters
        deadlines: dict[str, date | None] = {}  # per decision date: a period has a few hundred
        for dept, decided_on, reported_on, n in conn.execute(stmt):
            if decided_on is None or reported_on is None:
                continue
            decided_text = str(decided_on)[:10]
            if decided_text not in deadlines:
                deadlines[decided_text] = self._deadline(decided_text)
            deadline = deadlines[decided_text]
            if deadline is None:
                continue
            entry = of(dept)
            if str(reported_on)[:10] <= deadline.isoformat():  # ISO dates compare as text
                entry.timely += int(n)
            else:
                entry.late += int(n)

    def _deadline(self, decided: str) -> date | None:
        try:
            return self._calendar.add_working_days(date.fromisoformat(decided), REPORTING_WORKING_DAYS)
        except ValueError:  # not a date: the standard's validation keeps these out; skip rather than fail
            return None
