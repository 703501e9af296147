"""A mapping spec compiled against the standard, ready to map payloads.

Everything is checked and compiled once (paths to lookups, transforms to closures, conditions to
predicates, reference tables read); ``CompiledMapping.map`` then only calls closures.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gateway.errors import ConfigError, MappingError
from mapping.evaluators import Scope, compile_value, constant
from mapping.findings import Finding
from mapping.list_values import Finalize, finalizer, typed
from mapping.loader import SourceMap, read_spec
from mapping.map_context import Evaluator, MapContext, clean
from mapping.memo import MISS, Memo
from mapping.paths import PathSyntaxError, compile_path
from mapping.reference_tables import ReferenceTable, ReferenceTableError, read_reference
from mapping.spec import ExampleSpec, MappingSpec, SpecProblems, ValueSpec
from mapping.transform_base import TransformContext
from mapping.transform_codes import narrow_field_of

if TYPE_CHECKING:
    from mapping.standard import FieldSpec, KindSpec, Standard

# (field name, ext key or None, evaluate, finalize: applied to values that are not text,
#  source key when the value is that key's cleaned value as is,
#  memo of ``evaluate`` when it reads one source key: read inline, hits and misses,
#  whether the value depends on the envelope's meta alone)
_Plan = tuple[str, str | None, Evaluator, Finalize | None, str | None, Memo | None, bool]
_MIN_RECORDS_TO_HOIST = 4  # below this, evaluating meta-only fields once saves less than it costs


@dataclass(slots=True)
class MappedRecord:
    record: dict[str, Any]            # standard fields (+ "ext"), without gateway-filled fields
    provenance: Mapping[str, str]     # standard field -> source path inside the source record
    findings: list[Finding]           # transform findings; location None
    source_path: str                  # where the source record sits in the payload ("" = payload)
    index: int                        # 0-based position among the payload's records
    source: Any                       # the source record (sub-tree)


class CompiledMapping:
    """One mapping, compiled. ``map`` turns a decoded payload into mapped records."""

    def __init__(self, spec: MappingSpec, spec_path: Path, plans: tuple[_Plan, ...],
                 provenance: dict[str, str], records: Any, set_kind: bool,
                 source_map: SourceMap | None = None) -> None:
        self.spec = spec              # what it was compiled from (compiled again in a map worker)
        self.name = spec.name
        self.version = spec.version
        self.standard_version = spec.standard_version
        self.kind = spec.kind
        self.source = spec.source
        self.format = spec.format
        self.description = spec.description
        self.spec_path = spec_path
        self.examples: tuple[ExampleSpec, ...] = tuple(spec.examples)
        self.source_map = source_map
        self._plans = plans
        self._provenance = provenance
        self._records = records       # CompiledPath | None
        self._set_kind = set_kind
        self._hoistable = any(plan[6] for plan in plans)
        self.record_fields: frozenset[str] = frozenset(
            {"record_kind", *("ext" if plan[1] is not None else plan[0] for plan in plans)})
        """The top-level fields its records may hold (before the gateway fills its own)."""
        # Records share the provenance they start with (read only), or one of its variants with
        # the alternatives ``first`` chose (a few per mapping); lists of objects write their
        # elements' paths into a copy of their own.
        self._shared_provenance = not any(_lists_of_objects(v) for v in spec.fields.values())
        self._provenance_variants: dict[tuple[tuple[str, str], ...], dict[str, str]] = {}

    def __repr__(self) -> str:
        return f"CompiledMapping({self.name!r} v{self.version}, kind={self.kind!r})"

    @property
    def provenance(self) -> Mapping[str, str]:
        """Standard field -> source path, as every record starts with (read only)."""
        return self._provenance

    def map(self, payload: Any, meta: Mapping[str, Any], *, records_inline: bool = False) -> list[MappedRecord]:
        """Map every source record of the payload; raises MappingError if ``records`` is not a list.

        ``records_inline``: the payload is already one source record or a list of them (push
        ingest), so the ``records`` path, written for the source's own pages, is not applied.
        """
        sources = self.sources(payload, records_inline)
        plans = self._plans
        if self._hoistable and len(sources) >= _MIN_RECORDS_TO_HOIST:
            plans = self._hoisted(plans, sources[0][0], meta)
        map_one = self._map_one
        ctx = MapContext(meta)  # one for the payload: each record gets its own record and findings
        return [map_one(src, ctx, where, i, plans) for i, (src, where) in enumerate(sources)]

    @staticmethod
    def _hoisted(plans: tuple[_Plan, ...], src: Any, meta: Mapping[str, Any]) -> tuple[_Plan, ...]:
        """``plans`` with the fields that depend on the meta alone (its file's time, the provider,
        constants) evaluated once for all the payload's records; a field whose evaluation reports a
        finding, chooses another source path or reads the record is left to each record, as is."""
        out = []
        for plan in plans:
            if plan[6]:
                ctx = MapContext(meta)
                ctx.field = plan[0]
                value = plan[2](src, ctx)
                if not ctx.findings and ctx.prov_override is None and not ctx.read_record:
                    plan = (plan[0], plan[1], constant(value), plan[3], None, None, False)
            out.append(plan)
        return tuple(out)

    def sources(self, payload: Any, records_inline: bool) -> list[tuple[Any, str]]:
        """The payload's source records and where each sits; raises MappingError as ``map`` does."""
        if self._records is None or records_inline:
            if type(payload) is list:
                return [(item, f"[{i}]") for i, item in enumerate(payload)]
            return [(payload, "")]
        where = self._records.text
        found = self._records.get(payload)
        if type(found) is list:
            return [(item, f"{where}[{i}]") for i, item in enumerate(found)]
        if isinstance(found, dict):
            return [(found, where)]
        if found is None or (isinstance(found, str) and not found.strip()):
            return []
        raise MappingError(
            f"mapping {self.name}: records path {where!r} holds {type(found).__name__}, not a list")

    def _map_one(self, src: Any, ctx: MapContext, source_path: str, index: int,
                 plans: tuple[_Plan, ...]) -> MappedRecord:
        shared = self._shared_provenance
        provenance = ctx.provenance = self._provenance if shared else self._provenance.copy()
        record = ctx.record = {}
        findings: list[Finding] = []
        ctx.findings = findings
        if self._set_kind:
            record["record_kind"] = self.kind
        overrides: list[tuple[str, str]] | None = None
        source = src if type(src) is dict else {}
        for name, ext_key, evaluate, finalize, key, memo, _ in plans:
            if key is not None:  # a plain `{path: KEY}`: read inline, it cannot fail
                value = source.get(key)
                if type(value) is str:
                    value = value.strip() or None
                elif type(value) is list:
                    value = clean(value)
            elif memo is not None and type(raw := source.get(memo.key)) is str:
                # what the memo's evaluator would do, without calling it
                value = memo.cache.get(raw, MISS)
                if value is not MISS:
                    memo.hits += 1
                    if type(value) is list:
                        value = value.copy()
                else:
                    ctx.field = name
                    value = memo.convert(raw, raw.strip() or None, memo.chain, ctx)
            else:
                ctx.field = name
                value = evaluate(src, ctx)
                if ctx.prov_override is not None:
                    if shared:
                        if overrides is None:
                            overrides = []
                        overrides.append((name, ctx.prov_override))
                    else:
                        provenance[name] = ctx.prov_override
                    ctx.prov_override = None
            if value is None:
                continue
            if finalize is not None and type(value) is not str:
                value = finalize(value)
            if ext_key is None:
                record[name] = value
            else:
                ext = record.get("ext")
                if not isinstance(ext, dict):
                    ext = record["ext"] = {}
                ext[ext_key] = value
        if overrides is not None:
            provenance = self._provenance_variant(tuple(overrides))
        return MappedRecord(record, provenance, findings, source_path, index, src)

    def _provenance_variant(self, overrides: tuple[tuple[str, str], ...]) -> dict[str, str]:
        """The starting provenance with these fields' paths replaced, shared by the records that
        chose the same alternatives (the paths are the spec's own: a few combinations at most)."""
        found = self._provenance_variants.get(overrides)
        if found is None:
            found = self._provenance.copy()
            found.update(overrides)
            self._provenance_variants[overrides] = found
        return found


def _lists_of_objects(spec: ValueSpec) -> bool:
    """Whether a value spec holds an ``each`` or ``entries`` source at any depth."""
    if spec.each is not None or spec.entries is not None:
        return True
    nested = [*(spec.first or ()), *(spec.concat or ()), *((spec.fields or {}).values())]
    if spec.ref is not None:
        nested.append(spec.ref.key)
    return any(_lists_of_objects(inner) for inner in nested)


def _copy_object(value: Any) -> Any:
    return dict(value) if isinstance(value, dict) else value


def _field_spec(name: str, kind: KindSpec, problems: SpecProblems) -> tuple[FieldSpec | None, bool]:
    """The standard field a mapping key names; (None, True) for ext.NAME, (None, False) if invalid."""
    loc = ("fields", name)
    if name.startswith("ext."):
        if not name[4:].strip():
            problems.add(loc, "ext fields are named ext.NAME")
            return None, False
        return None, True
    spec = kind.fields.get(name)
    if spec is None:
        hint = difflib.get_close_matches(name, kind.fields, n=1)
        problems.add(loc, f"unknown field {name!r} of kind {kind.name}"
                     + (f" (did you mean {hint[0]!r}?)" if hint else "; local fields go in ext.NAME"))
        return None, False
    if spec.filled_by == "gateway":
        problems.add(loc, f"{name} is filled by the gateway and cannot be mapped")
        return None, False
    return spec, True


def _references(spec: MappingSpec, folder: Path, problems: SpecProblems) -> dict[str, ReferenceTable | None]:
    tables: dict[str, ReferenceTable | None] = {}
    for name, ref in spec.references.items():
        try:
            tables[name] = read_reference(folder / ref.file, ref.key)
        except ReferenceTableError as exc:
            problems.add(("references", name), str(exc))
            tables[name] = None
    return tables


def _needs_narrowing(spec: FieldSpec | None, standard: Standard, kind: str) -> bool:
    if spec is None or spec.type != "list[string]" or not spec.code_table:
        return False
    table = standard.code_tables.get(spec.code_table)
    return table is not None and narrow_field_of(table, kind) is not None


def _plans(spec: MappingSpec, kind: KindSpec, standard: Standard, refs: Mapping[str, ReferenceTable | None],
           problems: SpecProblems) -> tuple[tuple[_Plan, ...], dict[str, str]]:
    plans: list[_Plan] = []
    later: list[_Plan] = []           # list lookups narrowed by another field run after it
    provenance: dict[str, str] = {}
    for name, value_spec in spec.fields.items():
        field_spec, ok = _field_spec(name, kind, problems)
        if not ok:
            continue
        tctx = TransformContext(name, field_spec, standard, spec.kind, tuple(spec.schemes))
        compiled = compile_value(value_spec, Scope(tctx, refs, problems), ("fields", name))
        if compiled.provenance is not None:
            provenance[name] = compiled.provenance
        finalize = _copy_object if name == "ext" else finalizer(field_spec)
        ext_key = name[4:] if name.startswith("ext.") else None
        evaluate = typed(compiled.evaluate, field_spec)
        as_is = evaluate is compiled.evaluate
        memo = compiled.memo if as_is and compiled.memo is not None and compiled.memo.key is not None else None
        plan = (name, ext_key, evaluate, finalize, compiled.key if as_is else None, memo,
                as_is and compiled.meta_only)
        (later if _needs_narrowing(field_spec, standard, spec.kind) else plans).append(plan)
    return tuple(plans + later), provenance


def _check_header(spec: MappingSpec, standard: Standard, problems: SpecProblems) -> KindSpec | None:
    if standard.version != spec.standard_version:
        problems.add(("standard_version",), f"VERSION_UNSUPPORTED: the standard given is {standard.version}")
    kind = standard.kinds.get(spec.kind)
    if kind is None:
        hint = difflib.get_close_matches(spec.kind, standard.kinds, n=1)
        problems.add(("kind",), f"unknown kind {spec.kind!r}"
                     + (f" (did you mean {hint[0]!r}?)" if hint else ""))
    return kind


def compile_mapping(spec: MappingSpec, *, path: Path, standard: Standard,
                    source_map: SourceMap | None = None) -> CompiledMapping:
    """Check and compile a spec; raises ConfigError listing every problem (with lines if a map is given)."""
    problems = SpecProblems()
    kind = _check_header(spec, standard, problems)
    records = None
    if spec.records is not None:
        try:
            records = compile_path(spec.records)
        except PathSyntaxError as exc:
            problems.add(("records",), str(exc))
    seen: set[str] = set()
    for i, example in enumerate(spec.examples):
        if example.name in seen:
            problems.add(("examples", i, "name"), f"another example is named {example.name!r}")
        seen.add(example.name)
        if example.payload_file is not None and not (path.parent / example.payload_file).is_file():
            problems.add(("examples", i, "payload_file"), f"no such file: {example.payload_file}")
    refs = _references(spec, path.parent, problems)
    plans, provenance = _plans(spec, kind, standard, refs, problems) if kind is not None else ((), {})
    if problems:
        where = source_map or SourceMap(path)
        raise ConfigError([where.format(loc, message) for loc, message in problems.items])
    return CompiledMapping(spec, path, plans, provenance, records, "record_kind" not in spec.fields,
                           source_map)


def load_mapping(path: Path, *, standard: Standard | None = None) -> CompiledMapping:
    """Read, check and compile one mapping file (standard: the version the file declares)."""
    spec, source_map = read_spec(path)
    if standard is None:
        from mapping.standard import load_standard

        try:
            standard = load_standard(spec.standard_version)
        except ConfigError as exc:
            raise ConfigError(source_map.format(("standard_version",), "; ".join(exc.problems))) from exc
    return compile_mapping(spec, path=path, standard=standard, source_map=source_map)
