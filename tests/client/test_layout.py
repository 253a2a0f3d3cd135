"""The client's layout holds as client/__init__ describes it: read from the source (AST), no imports run.

cli → parsers → commands, render shows the data: commands never parse flags, print or import the rooms
above them; only the launchers import client.cli; only client/config.py reads the environment; no
import circle inside client/ (imports inside functions count too).
"""

from __future__ import annotations

import ast
from pathlib import Path

from tests.conftest import REPO

CLIENT = REPO / "client"
LAUNCHERS = {"health", "diagnose", "generate", "jobs", "validate", "bench", "workflow", "volume", "report"}


def module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, ast.Module]:
    return {module_name(p): ast.parse(p.read_text(), str(p)) for p in sorted(CLIENT.rglob("*.py"))}


def imports(tree: ast.Module, name: str) -> set[str]:
    """Every module the file of module `name` imports, anywhere in it (`from a.b import c` counts as
    a.b and a.b.c); a relative import counts as the absolute one it means (`from .. import cli`)."""
    package = name.split(".")
    if not (REPO.joinpath(*package) / "__init__.py").is_file():
        package.pop()
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package[: len(package) - node.level + 1] + ([base] if base else []))
            found |= {base} | {f"{base}.{alias.name}" for alias in node.names}
    return found


def test_a_relative_import_counts_as_the_module_it_names():
    tree = ast.parse("from .. import cli\nfrom ..render import text\nfrom . import jobs")
    assert {"client.cli", "client.render.text", "client.commands.jobs"} <= imports(tree, "client.commands.health")
    assert "client.render.text" in imports(ast.parse("from . import text"), "client.render")


def test_commands_return_data_and_never_parse_flags_print_or_render():
    for name, tree in modules().items():
        if not name.startswith("client.commands."):
            continue
        bad = {
            m
            for m in imports(tree, name)
            if m == "argparse" or m.split(".")[:2] in (["client", n] for n in ("cli", "parsers", "render"))
        }
        assert not bad, f"{name} imports {sorted(bad)}"
        calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call) and getattr(n.func, "id", "") == "print"]
        assert not calls, f"{name} prints (line {calls[0].lineno})"


def test_argparse_lives_in_the_cli_and_the_parsers_only():
    users = {name for name, tree in modules().items() if "argparse" in imports(tree, name)}
    assert "client.cli" in users and all(u == "client.cli" or u.startswith("client.parsers") for u in users), users


def test_only_the_launchers_import_the_cli():
    importers = {name for name, tree in modules().items() if "client.cli" in imports(tree, name)}
    assert importers == {f"client.{n}" for n in LAUNCHERS}
    for n in LAUNCHERS:  # and each launcher's subcommand has its parser module
        assert (CLIENT / "parsers" / f"{n}.py").is_file()


def test_only_config_reads_the_environment():
    readers = set()
    for name, tree in modules().items():
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Attribute)
                and node.attr in ("environ", "getenv", "environb", "getenvb")
                and getattr(node.value, "id", "") == "os"
            ) or (
                isinstance(node, ast.ImportFrom)
                and node.module == "os"
                and any(a.name in ("environ", "getenv", "environb", "getenvb") for a in node.names)
            ):
                readers.add(name)
    assert readers == {"client.config"}


def test_no_import_circles_inside_the_client():
    trees = modules()
    graph = {name: {m for m in imports(tree, name) if m in trees and m != name} for name, tree in trees.items()}
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            assert state.get(nxt) != 1, "import circle: " + " → ".join([*path[path.index(nxt) :], nxt])
            if nxt not in state:
                visit(nxt, [*path, nxt])
        state[node] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])
