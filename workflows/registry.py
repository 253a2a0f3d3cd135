"""The workflow registry: what each workflow needs and what it should produce.

One `<id>.yaml` per workflow beside its API-format `<id>.json`, plus `known_packs.yaml` (which
popular pack provides which node). Entries are validated at load. A broken entry (bad YAML, a
workflow file that is not JSON, an unknown key, a missing file) disables only that workflow: it is
kept in `Registry.problems` with the file, line and column, so the worker still starts and names it.
The image build's static self-check turns every problem into an error.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from workflows.models import MODEL_FOLDERS, canonical_folder
from workflows.parameters import PARAMETERS

REGISTRY_DIR = Path(__file__).resolve().parent / "registry"

OUTPUT_KINDS = ("image", "video", "audio", "text")


class RegistryError(ValueError):
    """A registry file is invalid; the message names file, key and problem."""


@dataclass(frozen=True, slots=True)
class PackRef:
    name: str
    repo: str
    commit: str | None = None
    nodes: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ModelSpec:
    folder: str
    name: str
    url: str | None = None
    size_bytes: int | None = None
    sha256: str | None = None
    node: str | None = None
    input: str | None = None


@dataclass(frozen=True, slots=True)
class Target:
    node: str
    input: str


@dataclass(frozen=True, slots=True)
class OutputSpec:
    node: str
    kind: str
    count: int = 1
    format: str | None = None
    width: int | None = None
    height: int | None = None
    frames: int | None = None


@dataclass(frozen=True, slots=True)
class Entry:
    id: str
    title: str
    workflow_file: Path
    description: str = ""
    runs_on_cpu: bool = False
    packs: tuple[PackRef, ...] = ()
    models: tuple[ModelSpec, ...] = ()
    parameters: Mapping[str, tuple[Target, ...]] = field(default_factory=dict)
    outputs: tuple[OutputSpec, ...] = ()
    timing: Mapping[str, float] = field(default_factory=dict)
    # the workflow file's text, read once at load: a job never touches the disk for it, and a file
    # changed after start can't turn a job into a crash
    workflow_text: str | None = field(default=None, repr=False, compare=False)

    def workflow(self) -> dict[str, Any]:
        """A fresh copy of the API-format workflow (callers may patch it)."""
        return json.loads(self.workflow_text if self.workflow_text is not None else _read_text(self.workflow_file))

    def pack_for_node(self, class_type: str) -> PackRef | None:
        return next((p for p in self.packs if class_type in p.nodes), None)


@dataclass(frozen=True, slots=True)
class Registry:
    entries: Mapping[str, Entry]
    known_packs: tuple[PackRef, ...] = ()
    problems: Mapping[str, str] = field(default_factory=dict)  # workflow id -> why it is disabled

    def get(self, workflow_id: str) -> Entry | None:
        return self.entries.get(workflow_id)

    def require_valid(self) -> Registry:
        """Self, or RegistryError naming every broken file: for the image build and the client's tools."""
        if self.problems:
            raise RegistryError("; ".join(self.problems[k] for k in sorted(self.problems)))
        return self

    def pack_for_node(self, class_type: str) -> PackRef | None:
        """The pack that provides a node: registered workflows' pins first, then popular packs."""
        for entry in self.entries.values():
            if pack := entry.pack_for_node(class_type):
                return pack
        return next((p for p in self.known_packs if class_type in p.nodes), None)

    def required_nodes(self) -> dict[str, list[str]]:
        """node class -> registered workflow ids that use it."""
        needed: dict[str, list[str]] = {}
        for entry in self.entries.values():
            for node in entry.workflow().values():
                if isinstance(node, dict) and isinstance(node.get("class_type"), str):
                    ids = needed.setdefault(node["class_type"], [])
                    if entry.id not in ids:
                        ids.append(entry.id)
        return needed

    def packs(self) -> list[PackRef]:
        """Every custom node pack a registered workflow needs, once (for the image build)."""
        seen: dict[str, PackRef] = {}
        for entry in self.entries.values():
            for pack in entry.packs:
                if pack.name in seen and seen[pack.name].commit != pack.commit:
                    raise RegistryError(f"pack {pack.name}: pinned to two commits across entries")
                seen[pack.name] = PackRef(
                    pack.name,
                    pack.repo,
                    pack.commit,
                    tuple(dict.fromkeys((*seen.get(pack.name, pack).nodes, *pack.nodes))),
                )
        return list(seen.values())


def _read_text(path: Path) -> str:
    return path.read_text(encoding="utf-8")


class _Reader:
    """Typed access to one YAML mapping with errors that name file and key."""

    def __init__(self, file: str, data: Any, where: str = "") -> None:
        if not isinstance(data, dict):
            raise RegistryError(f"{file}: {where or 'top level'}: expected a mapping")
        self.file, self.data, self.where = file, data, where

    def _fail(self, key: str, problem: str) -> RegistryError:
        return RegistryError(f"{self.file}: {self.where}{key}: {problem}")

    def get(self, key: str, kind: type | tuple[type, ...], required: bool = False, default: Any = None) -> Any:
        if key not in self.data:
            if required:
                raise self._fail(key, "required key is missing")
            return default
        value = self.data[key]
        if not isinstance(value, kind) or (isinstance(value, bool) and bool not in _as_tuple(kind)):
            raise self._fail(key, f"expected {_type_names(kind)}, got {type(value).__name__}")
        return value

    def sub(self, key: str, value: Any) -> _Reader:
        return _Reader(self.file, value, f"{self.where}{key}.")

    def unknown(self, allowed: Iterable[str]) -> None:
        extra = sorted(set(self.data) - set(allowed))
        if extra:
            raise self._fail(extra[0], f"unknown key (allowed: {', '.join(sorted(allowed))})")


def _as_tuple(kind: type | tuple[type, ...]) -> tuple[type, ...]:
    return kind if isinstance(kind, tuple) else (kind,)


def _type_names(kind: type | tuple[type, ...]) -> str:
    return " or ".join(k.__name__ for k in _as_tuple(kind))


def _parse_pack(r: _Reader) -> PackRef:
    r.unknown({"name", "repo", "commit", "nodes"})
    nodes = r.get("nodes", list, default=[])
    if not all(isinstance(n, str) for n in nodes):
        raise r._fail("nodes", "expected a list of node class names")
    commit = r.get("commit", str)
    if commit is not None and (len(commit) != 40 or any(c not in "0123456789abcdef" for c in commit)):
        raise r._fail("commit", "expected a 40-hex commit sha")
    return PackRef(r.get("name", str, True), r.get("repo", str, True), commit, tuple(nodes))


def _parse_model(r: _Reader) -> ModelSpec:
    r.unknown({"folder", "name", "url", "size_bytes", "sha256", "node", "input"})
    folder = r.get("folder", str, True)
    if folder not in MODEL_FOLDERS:
        raise r._fail("folder", f"unknown model folder {folder!r}")
    sha = r.get("sha256", str)
    if sha is not None and (len(sha) != 64 or any(c not in "0123456789abcdef" for c in sha.lower())):
        raise r._fail("sha256", "expected 64 hex characters")
    node = r.get("node", (str, int))
    return ModelSpec(
        canonical_folder(folder),
        r.get("name", str, True),
        r.get("url", str),
        r.get("size_bytes", int),
        sha.lower() if sha else None,
        None if node is None else str(node),
        r.get("input", str),
    )


def _parse_targets(r: _Reader, name: str, value: Any) -> tuple[Target, ...]:
    items = value if isinstance(value, list) else [value]
    targets = []
    for i, item in enumerate(items):
        t = r.sub(f"{name}[{i}]" if isinstance(value, list) else name, item)
        t.unknown({"node", "input"})
        targets.append(Target(str(t.get("node", (str, int), True)), t.get("input", str, True)))
    return tuple(targets)


def _parse_output(r: _Reader) -> OutputSpec:
    r.unknown({"node", "kind", "count", "format", "width", "height", "frames"})
    kind = r.get("kind", str, True)
    if kind not in OUTPUT_KINDS:
        raise r._fail("kind", f"expected one of {', '.join(OUTPUT_KINDS)}")
    return OutputSpec(
        str(r.get("node", (str, int), True)),
        kind,
        r.get("count", int, default=1),
        r.get("format", str),
        r.get("width", int),
        r.get("height", int),
        r.get("frames", int),
    )


def parse_entry(file: Path, data: Any) -> Entry:
    """Validate one registry mapping (pure apart from checking the workflow file exists)."""
    r = _Reader(file.name, data)
    r.unknown(
        {"id", "title", "description", "workflow", "runs_on_cpu", "packs", "models", "parameters", "outputs", "timing"}
    )
    entry_id = r.get("id", str, True)
    if entry_id != file.stem:
        raise r._fail("id", f"must equal the file name stem {file.stem!r}")
    workflow_file = file.parent / r.get("workflow", str, True)
    if not workflow_file.is_file():
        raise r._fail("workflow", f"file {workflow_file.name} not found beside the entry")
    params = r.get("parameters", dict, default={})
    for name in params:
        if name not in PARAMETERS:
            raise r.sub("parameters", params)._fail(str(name), f"unknown parameter (known: {', '.join(PARAMETERS)})")
    timing = r.get("timing", dict, default={})
    if not all(isinstance(v, int | float) for v in timing.values()):
        raise r._fail("timing", "values must be numbers of seconds")
    return Entry(
        id=entry_id,
        title=r.get("title", str, True),
        workflow_file=workflow_file,
        description=r.get("description", str, default=""),
        runs_on_cpu=r.get("runs_on_cpu", bool, default=False),
        packs=tuple(_parse_pack(r.sub(f"packs[{i}]", p)) for i, p in enumerate(r.get("packs", list, default=[]))),
        models=tuple(_parse_model(r.sub(f"models[{i}]", m)) for i, m in enumerate(r.get("models", list, default=[]))),
        parameters={k: _parse_targets(r.sub("parameters", params), k, v) for k, v in params.items()},
        outputs=tuple(
            _parse_output(r.sub(f"outputs[{i}]", o)) for i, o in enumerate(r.get("outputs", list, default=[]))
        ),
        timing=dict(timing),
    )


def _yaml_error(file: Path, exc: yaml.YAMLError) -> str:
    mark = getattr(exc, "problem_mark", None)
    where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    return f"{file.name}: not valid YAML{where}: {problem}"


def load_entry(file: Path) -> Entry:
    """One registry entry with its workflow file checked to be a JSON object; RegistryError otherwise."""
    try:
        data = yaml.safe_load(_read_text(file))
    except yaml.YAMLError as exc:
        raise RegistryError(_yaml_error(file, exc)) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise RegistryError(f"{file.name}: cannot be read: {exc}") from None
    entry = parse_entry(file, data)
    name = entry.workflow_file.name
    try:
        text = _read_text(entry.workflow_file)
        workflow = json.loads(text)
    except json.JSONDecodeError as exc:
        raise RegistryError(f"{name}: not valid JSON (line {exc.lineno}, column {exc.colno}): {exc.msg}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise RegistryError(f"{name}: cannot be read: {exc}") from None
    if not isinstance(workflow, dict) or not workflow:
        raise RegistryError(f"{name}: expected a JSON object of nodes (API format)")
    return replace(entry, workflow_text=text)


def load_registry(directory: Path = REGISTRY_DIR) -> Registry:
    """Every entry in `directory`; broken ones land in `problems` instead of failing the rest."""
    entries: dict[str, Entry] = {}
    problems: dict[str, str] = {}
    if not directory.is_dir() or not any(directory.glob("*.yaml")):  # an unmounted volume, a typo
        problems["registry"] = f"{directory}: no registry here (no directory, or no <id>.yaml in it)"
    for file in sorted(directory.glob("*.yaml")):
        if file.name == "known_packs.yaml":
            continue
        try:
            entry = load_entry(file)
        except RegistryError as exc:
            problems[file.stem] = str(exc)
            continue
        entries[entry.id] = entry
    known: list[PackRef] = []
    known_file = directory / "known_packs.yaml"
    if known_file.is_file():
        try:
            data = yaml.safe_load(_read_text(known_file)) or []
            if not isinstance(data, list):
                raise RegistryError(f"{known_file.name}: top level: expected a list of packs")
            known = [_parse_pack(_Reader(known_file.name, p, f"[{i}].")) for i, p in enumerate(data)]
        except yaml.YAMLError as exc:
            problems[known_file.stem] = _yaml_error(known_file, exc)
        except RegistryError as exc:
            problems[known_file.stem] = str(exc)
    return Registry(entries, tuple(known), problems)


@cache
def default_registry() -> Registry:
    """The registry shipped with this package, loaded once per process."""
    return load_registry()
