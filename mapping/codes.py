"""Code tables and the alias procedure of code-tables.yaml (``conventions.alias_matching``).

A source value is normalised (NFKC, all whitespace removed, ASCII letters lower-cased) and
looked up, in this order, among the canonical codes and ``label_zh``, the ``text`` aliases, the
aliases of the schemes the mapping declares (in its order), then the mapping's own aliases.
List fields first try the table's ``combined_aliases`` (old labels that stand for several codes),
narrowed by keywords found in the record's narrowing field; a combined label that cannot be
narrowed keeps every candidate and is flagged ``ambiguous`` (warning ``CODE_AMBIGUOUS``).
Normalised lookup dicts are built once per table; merged chains are cached per scheme list.
"""

from __future__ import annotations

import re
import string
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Literal, NamedTuple

_ASCII_LOWER = str.maketrans(string.ascii_uppercase, string.ascii_lowercase)
_LIST_SEPARATORS = re.compile(r"[;；,，|\r\n]")
_ENUMERATION_COMMA = "、"
_MAX_CACHED_CHAINS = 256
_MAX_MEMO_ITEMS = 1024
_SINGLE, _COMBINED, _AMBIGUOUS = range(3)   # how one text matched (CodeTable._match)


def normalise_code_value(value: str) -> str:
    """The comparison form of a source value: NFKC, no whitespace at all, ASCII lower case."""
    return "".join(unicodedata.normalize("NFKC", value).split()).translate(_ASCII_LOWER)


@dataclass(frozen=True, slots=True)
class CodeEntry:
    code: str
    label_zh: str
    label_en: str
    holder: str | None = None
    """id_type only: ``organisation`` or ``natural_person`` (rules CPT-004/005)."""
    validates_as: str | None = None
    """id_type only: the identifier check the number must pass (``uscc``, ``ric``)."""


class ListResolution(NamedTuple):
    """One per list value resolved: a named tuple, built at a fraction of a frozen dataclass's cost."""

    codes: list[str]
    unknown: list[str]
    """Source parts (trimmed, as received) that matched no code."""
    ambiguous: bool
    combined: bool = False
    """A combined alias matched: the codes may depend on the narrowing text, not on the value alone."""


@dataclass(frozen=True, slots=True)
class CombinedAlias:
    maps_to: tuple[str, ...]
    narrow_by_keywords: tuple[tuple[str, str], ...]
    """(normalised keyword, code) pairs; empty when the alias cannot be narrowed."""


_Chain = tuple[Mapping[str, str], ...]
_CombinedChain = tuple[Mapping[str, "CombinedAlias"], ...]


class CodeTable:
    """One code table with its normalised lookups."""

    __slots__ = (
        "_canonical", "_chains", "_combined", "_single", "codes", "label_en", "label_zh", "mode",
        "name", "narrow_field", "schemes",
    )

    def __init__(
        self,
        name: str,
        label_zh: str,
        entries: Sequence[CodeEntry],
        *,
        label_en: str = "",
        mode: Literal["closed", "open"] = "closed",
        aliases: Mapping[str, Mapping[str, str]] | None = None,
        combined: Mapping[str, Mapping[str, CombinedAlias]] | None = None,
        narrow_field: Mapping[str, str] | None = None,
    ) -> None:
        self.name = name
        self.label_zh = label_zh
        self.label_en = label_en
        self.mode: Literal["closed", "open"] = mode
        self.codes: Mapping[str, CodeEntry] = MappingProxyType({e.code: e for e in entries})
        self.narrow_field: Mapping[str, str] = MappingProxyType(dict(narrow_field or {}))
        canonical: dict[str, str] = {}
        for entry in entries:
            canonical.setdefault(normalise_code_value(entry.label_zh), entry.code)
        for entry in entries:  # a code wins over another code's label
            canonical[normalise_code_value(entry.code)] = entry.code
        self._canonical: Mapping[str, str] = canonical
        self._single: Mapping[str, Mapping[str, str]] = {
            scheme: {normalise_code_value(v): code for v, code in table.items()}
            for scheme, table in (aliases or {}).items()
        }
        self._combined: Mapping[str, Mapping[str, CombinedAlias]] = {
            scheme: {normalise_code_value(v): alias for v, alias in table.items()}
            for scheme, table in (combined or {}).items()
        }
        self.schemes: frozenset[str] = frozenset(self._single) | frozenset(self._combined)
        self._chains: dict[tuple[Any, ...], tuple[_Chain, _CombinedChain]] = {}

    @classmethod
    def from_yaml(cls, name: str, raw: Mapping[str, Any]) -> CodeTable:
        """Build a table from its code-tables.yaml entry."""
        entries: list[CodeEntry] = []
        aliases: dict[str, dict[str, str]] = {}
        for c in raw.get("codes", ()):
            code = str(c["code"])
            entries.append(CodeEntry(code, str(c["label_zh"]), str(c.get("label_en", "")),
                                     c.get("holder"), c.get("validates_as")))
            for alias in c.get("aliases", ()):
                aliases.setdefault(str(alias["scheme"]), {})[str(alias["value"])] = code
        combined: dict[str, dict[str, CombinedAlias]] = {}
        for ca in raw.get("combined_aliases", ()):
            keywords = tuple((normalise_code_value(k), str(v))
                             for k, v in (ca.get("narrow_by_keywords") or {}).items())
            alias = CombinedAlias(tuple(str(m) for m in ca["maps_to"]), keywords)
            for value in ca.get("values", ()):
                combined.setdefault(str(value["scheme"]), {})[str(value["value"])] = alias
        return cls(name, str(raw.get("label_zh", name)), entries, label_en=str(raw.get("label_en", "")),
                   mode=raw.get("mode", "closed"), aliases=aliases, combined=combined,
                   narrow_field=raw.get("narrow_field"))

    def __repr__(self) -> str:
        return f"CodeTable({self.name!r}, {len(self.codes)} codes)"

    def is_code(self, value: str) -> bool:
        """True when ``value`` is exactly a canonical code (no normalisation)."""
        return value in self.codes

    def resolve(
        self, value: str, schemes: Sequence[str] = (), extra_aliases: Mapping[str, str] | None = None
    ) -> str | None:
        """The canonical code for a single source value, or None when nothing matches."""
        if value in self.codes:
            return value
        key = normalise_code_value(value)
        for lookup in self._chain(schemes, extra_aliases)[0]:
            code = lookup.get(key)
            if code is not None:
                return code
        return None

    def resolver(
        self, schemes: Sequence[str] = (), extra_aliases: Mapping[str, str] | None = None
    ) -> Callable[[str], str | None]:
        """``resolve`` with the lookup chain bound once (for compiled transforms)."""
        singles = self._chain(schemes, extra_aliases)[0]
        codes = self.codes

        def resolve(value: str) -> str | None:
            if value in codes:
                return value
            key = normalise_code_value(value)
            for lookup in singles:
                code = lookup.get(key)
                if code is not None:
                    return code
            return None

        return resolve

    def resolve_list(
        self,
        value: str | Sequence[str],
        schemes: Sequence[str] = (),
        extra_aliases: Mapping[str, str] | None = None,
        narrow_text: str | None = None,
    ) -> ListResolution:
        """Codes for a list field: one source string (split as the procedure says) or a list of them."""
        singles, combined = self._chain(schemes, extra_aliases)
        result = ListResolution([], [], False)
        ambiguous = narrowed = False
        for item in [value] if isinstance(value, str) else value:
            item_ambiguous, item_narrowed = self._resolve_item(item, singles, combined, narrow_text, result)
            ambiguous |= item_ambiguous
            narrowed |= item_narrowed
        return ListResolution(result.codes, result.unknown, ambiguous, narrowed)

    def list_resolver(
        self, schemes: Sequence[str] = (), extra_aliases: Mapping[str, str] | None = None, *,
        memo: bool = True,
    ) -> Callable[[str | Sequence[str], str | None], ListResolution]:
        """``resolve_list`` with the chain bound once and, with ``memo``, a bounded memo of the
        items that resolve without findings and without a combined alias (whose codes may depend on
        the narrowing text)."""
        singles, combined = self._chain(schemes, extra_aliases)
        known: dict[str, tuple[str, ...]] = {}

        def resolve(value: str | Sequence[str], narrow_text: str | None) -> ListResolution:
            codes: list[str] = []
            unknown: list[str] = []
            ambiguous = any_narrowed = False
            for item in [value] if isinstance(value, str) else value:
                found = known.get(item)
                if found is not None:  # _add_unique spelt out: the path of nearly every item
                    for code in found:
                        if code not in codes:
                            codes.append(code)
                    continue
                part = ListResolution([], [], False)
                item_ambiguous, narrowed = self._resolve_item(item, singles, combined, narrow_text, part)
                ambiguous |= item_ambiguous
                any_narrowed |= narrowed
                _add_unique(codes, part.codes)
                unknown.extend(part.unknown)
                if memo and not (item_ambiguous or narrowed or part.unknown):
                    if len(known) >= _MAX_MEMO_ITEMS:
                        known.clear()
                    known[item] = tuple(part.codes)
            return ListResolution(codes, unknown, ambiguous, any_narrowed)

        return resolve

    def unknown_alias_targets(self, extra_aliases: Mapping[str, str]) -> list[str]:
        """Targets of a mapping's own aliases that are neither a code nor a label (for load checks)."""
        return [t for t in extra_aliases.values() if self._canonical_code(t) is None]

    # -- internals ---------------------------------------------------------------------------

    def _canonical_code(self, value: str) -> str | None:
        return value if value in self.codes else self._canonical.get(normalise_code_value(value))

    def _chain(
        self, schemes: Sequence[str], extra_aliases: Mapping[str, str] | None
    ) -> tuple[_Chain, _CombinedChain]:
        cache_key = (tuple(schemes), tuple(extra_aliases.items()) if extra_aliases else ())
        chain = self._chains.get(cache_key)
        if chain is None:
            order = ["text", *(s for s in schemes if s != "text")]
            singles: list[Mapping[str, str]] = [self._canonical]
            singles += [self._single[s] for s in order if s in self._single]
            if extra_aliases:
                extra = {}
                for source, target in extra_aliases.items():
                    code = self._canonical_code(str(target))
                    if code is not None:
                        extra[normalise_code_value(str(source))] = code
                singles.append(extra)
            combined = tuple(self._combined[s] for s in order if s in self._combined)
            if len(self._chains) >= _MAX_CACHED_CHAINS:
                self._chains.clear()
            chain = self._chains[cache_key] = (tuple(singles), combined)
        return chain

    def _resolve_item(
        self, item: str, singles: _Chain, combined: _CombinedChain, narrow_text: str | None,
        out: ListResolution,
    ) -> tuple[bool, bool]:
        """Add the codes of one item to ``out``: (ambiguous, a combined alias was matched)."""
        text = unicodedata.normalize("NFKC", item)
        whole = self._match(text, singles, combined, narrow_text, out)
        if whole is not None:
            return whole == _AMBIGUOUS, whole != _SINGLE
        ambiguous = narrowed = False
        for part in _LIST_SEPARATORS.split(text):
            if not part.strip():
                continue
            matched = self._match(part, singles, combined, narrow_text, out)
            if matched is None and _ENUMERATION_COMMA in part:
                for piece in part.split(_ENUMERATION_COMMA):
                    if piece.strip():
                        found = self._match(piece, singles, combined, narrow_text, out)
                        ambiguous |= found == _AMBIGUOUS
                        narrowed |= found is not None and found != _SINGLE
                        if found is None:
                            out.unknown.append(piece.strip())
            elif matched is None:
                out.unknown.append(part.strip())
            else:
                ambiguous |= matched == _AMBIGUOUS
                narrowed |= matched != _SINGLE
        return ambiguous, narrowed

    @staticmethod
    def _match(
        text: str, singles: _Chain, combined: _CombinedChain, narrow_text: str | None, out: ListResolution
    ) -> int | None:
        """Add the codes ``text`` stands for to ``out``; None = no match, else how it matched."""
        key = "".join(text.split()).translate(_ASCII_LOWER)
        for table in combined:
            alias = table.get(key)
            if alias is not None:
                narrow = normalise_code_value(narrow_text) if narrow_text and alias.narrow_by_keywords else ""
                kept = [code for kw, code in alias.narrow_by_keywords if narrow and kw in narrow]
                _add_unique(out.codes, kept or alias.maps_to)
                return _AMBIGUOUS if not kept and alias.narrow_by_keywords else _COMBINED
        for lookup in singles:
            code = lookup.get(key)
            if code is not None:
                _add_unique(out.codes, (code,))
                return _SINGLE
        return None


def _add_unique(codes: list[str], new: Sequence[str]) -> None:
    for code in new:
        if code not in codes:
            codes.append(code)
