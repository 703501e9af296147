"""The mapping YAML as pydantic models (``extra="forbid"``: a typo fails at load, not at run time).

Only shape is checked here; names (fields, transforms, code tables), paths and conditions are
checked by the compiler against the standard, each problem located by its ``Loc``.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

Loc = tuple[str | int, ...]
"""Where in the YAML document: ``("fields", "checked_at", "then", 0)``."""

PayloadFormat = Literal["json", "csv", "xlsx", "xml", "soap", "hj212", "gb28181"]
TransformItem = str | dict[str, Any]

SOURCE_KEYS = ("path", "jmespath", "const", "meta", "concat", "template", "first", "each", "entries", "ref")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RefSpec(_Strict):
    table: str
    key: ValueSpec
    column: str


class ValueSpec(_Strict):
    """One field's value: exactly one source, then transforms, optionally a condition."""

    path: str | None = None
    jmespath: str | None = None
    const: Any = None
    meta: str | None = None
    concat: list[ValueSpec] | None = None
    sep: str | None = None
    template: str | None = None
    first: list[ValueSpec] | None = None
    each: str | None = None
    entries: str | None = None
    fields: dict[str, ValueSpec] | None = None
    ref: RefSpec | None = None
    then: list[TransformItem] = Field(default_factory=list)
    when: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _one_source(self) -> ValueSpec:
        given = [k for k in SOURCE_KEYS if k in self.model_fields_set]
        if len(given) != 1:
            found = ", ".join(given) if given else "none"
            raise ValueError(f"exactly one source of {', '.join(SOURCE_KEYS)} is needed (found: {found})")
        source = given[0]
        if self.sep is not None and source != "concat":
            raise ValueError("'sep' goes only with 'concat'")
        if (self.fields is not None) != (source in ("each", "entries")):
            raise ValueError("'fields' goes with 'each' or 'entries', and they need it")
        return self

    @property
    def source_kind(self) -> str:
        return next(k for k in SOURCE_KEYS if k in self.model_fields_set)


class ReferenceSpec(_Strict):
    """A reference CSV table, relative to the mapping file, keyed by one column."""

    file: str
    key: str


class ExpectedFinding(_Strict):
    code: str
    field: str


class ExpectedRecord(_Strict):
    """One produced record: its final form, and/or its findings as (code, field) pairs.

    ``record`` alone means the record is accepted (no errors). ``errors`` must equal the error
    findings; ``warnings`` are compared only when given.
    """

    record: dict[str, Any] | None = None
    errors: list[ExpectedFinding] | None = None
    warnings: list[ExpectedFinding] | None = None

    @model_validator(mode="after")
    def _something_expected(self) -> ExpectedRecord:
        if self.record is None and self.errors is None:
            raise ValueError("an expectation needs 'record' or 'errors'")
        return self


class ExampleSpec(_Strict):
    name: str
    meta: dict[str, Any] = Field(default_factory=dict)
    payload: Any = None
    payload_file: str | None = None
    expect: list[ExpectedRecord]

    @model_validator(mode="after")
    def _one_payload(self) -> ExampleSpec:
        if ("payload" in self.model_fields_set) == (self.payload_file is not None):
            raise ValueError("an example needs exactly one of 'payload' and 'payload_file'")
        return self


class MappingSpec(_Strict):
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_.-]*$", max_length=100)
    version: int = Field(ge=1)
    standard_version: str
    kind: str
    source: str
    format: PayloadFormat
    description: str = ""
    schemes: list[str] = Field(default_factory=list)
    records: str | None = None
    references: dict[str, ReferenceSpec] = Field(default_factory=dict)
    fields: dict[str, ValueSpec]
    examples: list[ExampleSpec] = Field(default_factory=list)


class SpecProblems:
    """Collects every problem found while compiling, each with its location in the document."""

    def __init__(self) -> None:
        self.items: list[tuple[Loc, str]] = []

    def add(self, loc: Loc, message: str) -> None:
        self.items.append((loc, message))

    def __bool__(self) -> bool:
        return bool(self.items)


class SpecProblem(ValueError):
    """Raised by a compile step for one problem; ``loc`` is relative to the step's own location."""

    def __init__(self, message: str, loc: Loc = ()) -> None:
        super().__init__(message)
        self.loc = loc
