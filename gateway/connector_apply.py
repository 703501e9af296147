"""``sgw connectors apply -f DIR``: make the registry match a folder (the GitOps path).

The folder holds one connector per ``*.yaml`` file (the schema of a ``connectors`` entry of the
config file) and, optionally, mapping specs under ``mappings/``. Everything is read and validated
first; nothing changes unless all of it is valid. Then, in one transaction, connectors are
created or changed, mapping versions added, and every connector not in the folder removed; a
running gateway picks the change up from the registry's revision within a few seconds.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from gateway.connector_checks import connector_problems
from gateway.errors import ConfigError
from gateway.ingest import Ingestor
from gateway.mapping_versions import checked_mapping
from gateway.settings import ConnectorSettings

MAPPINGS_SUBDIR = "mappings"


@dataclass(frozen=True, slots=True)
class Folder:
    connectors: dict[str, dict[str, Any]]   # id -> settings (as JSON), validated
    mappings: dict[str, str]                # mapping name -> YAML text


@dataclass(slots=True)
class ApplyPlan:
    created: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    mappings_created: list[str] = field(default_factory=list)
    mappings_changed: list[str] = field(default_factory=list)
    mappings_unchanged: list[str] = field(default_factory=list)

    @property
    def changes_anything(self) -> bool:
        return bool(self.created or self.changed or self.removed or self.mappings_created or self.mappings_changed)

    def lines(self) -> list[str]:
        out: list[str] = []
        for verb, names in (("created", self.created), ("changed", self.changed), ("removed", self.removed),
                            ("unchanged", self.unchanged)):
            out.extend(f"connector {name}: {verb}" for name in names)
        for verb, names in (("created", self.mappings_created), ("changed", self.mappings_changed),
                            ("unchanged", self.mappings_unchanged)):
            out.extend(f"mapping {name}: {verb}" for name in names)
        return out


def _yaml_files(folder: Path) -> list[Path]:
    return sorted([*folder.glob("*.yaml"), *folder.glob("*.yml")])


def read_folder(folder: Path, *, known_mappings: Collection[str], mappings_dir: Path, ingestor: Ingestor,
                department_exists: Callable[[str], bool] | None) -> Folder:
    """Read and validate the folder; ConfigError lists every problem of every file."""
    if not folder.is_dir():
        raise ConfigError(f"{folder}: not a folder")
    problems: list[str] = []
    mappings: dict[str, str] = {}
    for path in _yaml_files(folder / MAPPINGS_SUBDIR) if (folder / MAPPINGS_SUBDIR).is_dir() else []:
        text = path.read_text(encoding="utf-8")
        try:
            name = str((yaml.safe_load(text) or {}).get("name", path.stem))
            checked_mapping(text, mappings_dir, ingestor, name=name, version=None)
        except (ConfigError, yaml.YAMLError, AttributeError) as exc:
            problems.extend(f"{path}: {p}" for p in getattr(exc, "problems", [str(exc)]))
            continue
        mappings[name] = text
    names = set(known_mappings) | set(mappings)
    connectors: dict[str, dict[str, Any]] = {}
    for path in _yaml_files(folder):
        try:
            body = yaml.safe_load(path.read_text(encoding="utf-8"))
        except yaml.YAMLError as exc:
            problems.append(f"{path}: not valid YAML: {exc}")
            continue
        if not isinstance(body, dict):
            problems.append(f"{path}: a connector file is one mapping (id, type, mapping, options...)")
            continue
        found = connector_problems(body, names, department_exists)
        problems.extend(f"{path}: {p['path']}: {p['message']}" for p in found)
        if found:
            continue
        settings = ConnectorSettings.model_validate(body)
        if settings.id in connectors:
            problems.append(f"{path}: id: another file declares connector {settings.id!r}")
            continue
        connectors[settings.id] = settings.model_dump(mode="json")
    if problems:
        raise ConfigError(problems)
    return Folder(connectors=connectors, mappings=mappings)


def plan(current: Mapping[str, Mapping[str, Any]], current_mappings: Mapping[str, str], folder: Folder) -> ApplyPlan:
    """What applying the folder does to the registry's connectors and mappings (pure)."""
    out = ApplyPlan()
    for cid, config in sorted(folder.connectors.items()):
        before = current.get(cid)
        (out.created if before is None else out.unchanged if dict(before) == config else out.changed).append(cid)
    out.removed = sorted(cid for cid in current if cid not in folder.connectors)
    for name, text in sorted(folder.mappings.items()):
        before_text = current_mappings.get(name)
        (out.mappings_created if before_text is None else out.mappings_unchanged if before_text == text
         else out.mappings_changed).append(name)
    return out
