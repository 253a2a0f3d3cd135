"""The layers, enforced: who may import whom, and no import cycles anywhere (within packages too).

    workflows        the pure core: imports none of handler, client, comfyui_client
    comfyui_client   the one ComfyUI client: imports neither handler nor client
    handler          the worker: may import workflows and comfyui_client
    client           the laptop CLI: may import workflows and comfyui_client, never handler

Read from the source (ast), every import counted, also those inside functions (a lazy import is still
a dependency) and those under `if TYPE_CHECKING:`. `from pkg import name` counts as importing the
submodule pkg.name when there is one, else pkg itself.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("workflows", "comfyui_client", "handler", "client")
FORBIDDEN = {
    "workflows": {"handler", "client", "comfyui_client"},
    "comfyui_client": {"handler", "client"},
    "client": {"handler"},
    "handler": {"client"},
}


def _modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


MODULES = _modules()


def _known(name: str) -> str | None:
    """The module of ours that `name` lands in (a name inside a module counts as the module)."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def _imports(module: str, path: Path) -> set[str]:
    package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    deps: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            deps.update(filter(None, (_known(alias.name) for alias in node.names)))
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package[: len(package) - node.level + 1] + ([base] if base else []))
            for alias in node.names:
                target = f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else _known(base)
                if target:
                    deps.add(target)
    deps.discard(module)
    return deps


GRAPH = {module: _imports(module, path) for module, path in MODULES.items()}


def _cycles(graph: dict[str, set[str]]) -> list[frozenset[str]]:
    """Strongly connected components of more than one module (Tarjan's algorithm, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[frozenset[str]] = []
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = set()
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.add(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(frozenset(component))
    return found


def test_the_graph_is_read():
    # the test would pass vacuously on an empty graph: make sure it sees the imports we know of
    assert "workflows.errors" in GRAPH["workflows.judge"]
    assert "comfyui_client.client" in GRAPH["comfyui_client.runner"]


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_layers(package):
    wrong = sorted(
        f"{module} imports {dep}"
        for module, deps in GRAPH.items()
        if module.split(".")[0] == package
        for dep in deps
        if dep.split(".")[0] in FORBIDDEN[package]
    )
    assert wrong == []


def test_no_import_cycles():
    cycles = [sorted(c) for c in _cycles(GRAPH)]
    assert cycles == []


def test_cycle_finder_finds_a_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [frozenset({"a", "b", "c"})]


def test_the_pure_core_imports_without_the_clients_dependencies():
    """workflows.failures (and the pipeline) load on a machine without websocket-client or requests."""
    code = (
        "import sys\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] in ('websocket', 'requests', 'urllib3'):\n"
        "            raise ImportError(f'blocked: {name}')\n"
        "sys.meta_path.insert(0, Block())\n"
        "import workflows.failures, workflows.pipeline, comfyui_client, comfyui_client.errors\n"
        "assert comfyui_client.errors.PromptTimeout.kind == 'timeout'\n"
        "assert 'websocket' not in sys.modules\n"
    )
    run = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
