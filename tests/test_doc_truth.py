"""The docs can't drift: every name README.md and docs/*.md give exists and agrees with the code.

Checked against the code itself, not a copy: the one argparse parser of `comfy-runpod` (client.cli), the
environment every module reads (string literals, shell `${VAR}`, Dockerfile ARG/ENV, Makefile `?=`), the
defaults written in those reads, and the filesystem:

- every backticked UPPER_SNAKE name (variable, code, constant) is one the code knows, or an outside name
  listed below with its owner;
- every variable of a configuration table is read by the code, with the default the table gives;
- every `comfy-runpod …` / `python client/<x>.py …` command line names a subcommand that exists (and an
  action it takes), and only flags that subcommand has; every backticked `--flag` exists somewhere;
- a flag documented as "`--flag`, default N" has default N;
- the subcommand lists (README, docs/client.md's table, the JSON envelope, `jobs` actions) are complete;
- every repository path and every relative link (with its #anchor) exists; the README's layout table
  names only files that are in the directory of their row.
"""

from __future__ import annotations

import argparse
import ast
import re
from functools import cache
from pathlib import Path

import pytest

from tests.conftest import REPO

DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
CODE_DIRS = ("handler", "client", "workflows", "comfyui_client", "tools", "scripts", "docker", "mk", "benchmarks")
# Tests count only for a name's existence (a knob a test reads, UI_SCREENSHOT), never for defaults; not the
# tests that quote the docs (they would make every name "known").
NOT_CODE = ("test_doc_truth.py", "test_docs.py")
CODE_FILES = ("Dockerfile", "entrypoint.sh", "Makefile", ".ci/run", "pyproject.toml", "tests/image/harness.py")

# Names the docs use that belong to someone else, with the owner (so none is an unread variable of ours).
EXTERNAL_NAMES = {
    # the official worker's (docs/migrate.md says what replaces each)
    "REFRESH_WORKER": "worker-comfyui",
    "COMFY_LOG_LEVEL": "worker-comfyui",
    "WEBSOCKET_RECONNECT_ATTEMPTS": "worker-comfyui",
    "WEBSOCKET_RECONNECT_DELAY_S": "worker-comfyui",
    "WEBSOCKET_TRACE": "worker-comfyui",
    "SERVE_API_LOCALLY": "worker-comfyui",
    # read by botocore itself (docs/volume.md)
    "AWS_RETRY_MODE": "botocore",
    "AWS_REQUEST_CHECKSUM_CALCULATION": "botocore",
    "DOCKER_BUILDKIT": "docker",
    "GHCR_TOKEN": "an example shell variable (docs/deploy.md)",
    "JOB_ID": "a placeholder",
    "RUN_ID": "a placeholder",
    # the kernel's resource limits (docs/README Security: setrlimit)
    "RLIMIT_FSIZE": "the kernel",
    "RLIMIT_NPROC": "the kernel",
    "RLIMIT_AS": "the kernel",
    "PROT_NONE": "the kernel",  # mmap(2): a reservation RLIMIT_DATA does not count
    # socket families handler.seccomp refuses (it names only those it allows; README Security)
    "AF_PACKET": "the kernel",
    "AF_VSOCK": "the kernel",
    "AF_ALG": "the kernel",
    "AF_TIPC": "the kernel",
}
# Flags of other programs the docs show: docker, pip, ComfyUI, the runpod SDK, runpodctl, debootstrap.
EXTERNAL_FLAGS = {
    "docker": {"--platform", "--push", "--build-arg", "--secret", "--load", "--no-trunc", "--format", "--raw"},
    "pip": {"--require-hashes", "--no-deps", "--find-links", "--dry-run", "--report"},
    "ComfyUI": {
        "--cpu",
        "--disable-api-nodes",
        "--verbose",
        "--disable-mmap",
        "--front-end-root",
        "--output-directory",
        "--cache-none",
    },
    "runpod SDK": {"--rp_serve_api", "--rp_api_host", "--rp_api_port", "--rp_api_concurrency", "--test_input"},
    "runpodctl": {"--name", "--username", "--password"},
    "debootstrap": {"--variant"},
}
EXAMPLE_ENTRIES = ("my_flow", "four_packs")  # registry entries the docs' `workflow add` examples write
IGNORED_PATHS = ("docker/wheelhouse", "docker/pack-snapshots/", "docs/configuration.md")  # git-ignored / theirs
ENV_TABLE_HEADERS = ("| variable | default | meaning |", "| Argument | Default | What it does |")


# --- what the code knows --------------------------------------------------------------------------------


@cache
def code_text(with_tests: bool = False) -> str:
    files = [
        p
        for d in (*CODE_DIRS, *(("tests",) if with_tests else ()))
        for p in (REPO / d).rglob("*")
        if p.is_file() and p.suffix not in (".pyc", ".md") and p.name not in NOT_CODE and "fixtures" not in p.parts
    ]
    files += [REPO / f for f in CODE_FILES]
    return "\n".join(p.read_text(errors="replace") for p in files if p.is_file())


@cache
def env_reads() -> dict[str, list[str]]:
    """Every environment variable (or build argument) the code reads -> the default expressions it gives."""
    text, reads = code_text(), {}
    python = (
        r"(?:environ\.get|getenv|env\.get|_float|_int|_number|_flag)\(\s*(?:env,\s*)?"
        r"""["']([A-Z][A-Z0-9_]+)["']\s*(?:,\s*([^)\n]+))?\)"""
    )
    for name, default in re.findall(python, text):
        reads.setdefault(name, []).append(default.strip())
    for name in re.findall(r"""environ\[\s*["']([A-Z][A-Z0-9_]+)["']\s*\]""", text):
        reads.setdefault(name, [])
    for name, default in re.findall(r"\$\{([A-Z][A-Z0-9_]+)(?::-([^}]*))?\}", text):  # shell, Makefile
        reads.setdefault(name, []).append(repr(default) if default else "")
    for name in re.findall(r"\$\(?([A-Z][A-Z0-9_]+)\b", text):  # shell $VAR, Makefile $(VAR)
        reads.setdefault(name, [])
    for name, const in re.findall(r"""env\.get\(["']([A-Z][A-Z0-9_]+)["']\)\s+or\s+([A-Z][A-Z0-9_]+|"[^"]*")""", text):
        value = const if const.startswith('"') else _constant(const)  # `env.get("X") or DEFAULT`
        reads.setdefault(name, []).append(value or "")
    for name, value in re.findall(r'^\s+([A-Z][A-Z0-9_]+)=("[^"]*"|[^\s\\]*)\s*\\?$', text, re.M):  # Dockerfile ENV
        reads.setdefault(name, []).append(repr(value.strip('"')))
    for name, default in re.findall(r'^ARG ([A-Z][A-Z0-9_]+)(?:=("[^"]*"|\S*))?', text, re.M):  # Dockerfile build args
        reads.setdefault(name, []).append(repr(default.strip('"')) if default else "''")
    for name, default in re.findall(r"^([A-Z][A-Z0-9_]+) \?= ?(.*)$", text, re.M):  # Makefile
        reads.setdefault(name, []).append(repr(default.strip()))
    return reads


def _constant(name: str) -> str | None:
    """The literal a module-level constant of the code is set to (`NAME = "..."`), as source text."""
    found = re.search(rf"^{name}(?::[^=\n]+)? = (.+)$", code_text(), re.M)
    return found.group(1).strip() if found else None


def known_to_code(name: str) -> bool:
    text = code_text(with_tests=True)
    return bool(
        re.search(rf"""["']{name}["']""", text)  # a string literal: a variable read or set, a code, a status
        or re.search(rf"\$\{{?{name}\b", text)  # shell / Makefile
        or re.search(rf"^\s*(?:ARG|ENV)\s+{name}\b|^\s+{name}=", text, re.M)  # Dockerfile
        or re.search(rf"^\s*{name}\s*(?::[^=\n]+)?[?:]?=", text, re.M)  # a Python constant / Makefile variable
        or re.search(rf"\$\({name}\)", text)  # Makefile
    )


def literal(expr: str) -> object:
    """A default expression as a value (numbers, strings, simple arithmetic), or None if it isn't one."""
    expr = re.split(r",\s*\w+\s*=", expr.split("#")[0])[0].strip().rstrip(",")  # less keyword arguments
    if re.fullmatch(r"[\d\s.*+]+", expr):
        return eval(expr, {"__builtins__": {}})  # digits and * + only
    try:
        return ast.literal_eval(expr)
    except (ValueError, SyntaxError):
        return None


def same(doc: str, code: object) -> bool:
    try:
        return float(doc.replace(",", "")) == float(code)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return doc == str(code)


# --- the CLI --------------------------------------------------------------------------------------------


@cache
def cli() -> tuple[dict[str, set[str]], dict[str, set[str]], dict[str, dict[str, object]]]:
    """(subcommand -> its flags, subcommand -> the actions it takes, subcommand -> flag -> default)."""
    from client.cli import build_parser

    top, _ = build_parser()
    commands = next(a for a in top._actions if isinstance(a, argparse._SubParsersAction)).choices
    flags: dict[str, set[str]] = {}
    actions: dict[str, set[str]] = {}
    defaults: dict[str, dict[str, object]] = {}

    def walk(name: str, parser: argparse.ArgumentParser) -> None:
        for action in parser._actions:
            for option in action.option_strings:
                flags.setdefault(name, set()).add(option)
                defaults.setdefault(name, {})[option] = action.default
            if isinstance(action, argparse._SubParsersAction):
                actions.setdefault(name, set()).update(action.choices)
                for sub in action.choices.values():
                    walk(name, sub)
            elif not action.option_strings and action.choices:
                actions.setdefault(name, set()).update(map(str, action.choices))

    for name, parser in commands.items():
        walk(name, parser)
    return flags, actions, defaults


def other_flags() -> set[str]:
    """Flags of this repository's other programs (python -m handler.selfcheck, tools/, benchmarks/) and of others'."""
    ours = set(re.findall(r"""add_argument\(\s*(?:"-\w",\s*)?["'](--[\w-]+)["']""", code_text()))
    return ours | set().union(*EXTERNAL_FLAGS.values())


# --- the docs -------------------------------------------------------------------------------------------


def spans(path: Path) -> list[str]:
    """Inline code spans and the lines of fenced code blocks."""
    text = path.read_text()
    fence = r"^[ \t]*```[^\n]*\n(.*?)^[ \t]*```"  # fenced blocks, indented ones (inside a list) too
    blocks = re.findall(fence, text, re.M | re.S)
    inline = re.sub(fence, "", text, flags=re.M | re.S)
    return re.findall(r"`([^`\n]+)`", inline) + [line for b in blocks for line in _joined(b.splitlines())]


def _joined(lines: list[str]) -> list[str]:
    """Code-block lines with their continuations (a trailing backslash, or an indented usage line) joined."""
    out: list[str] = []
    for line in lines:
        indented = len(line) - len(line.lstrip()) > len(out[-1]) - len(out[-1].lstrip()) if out else False
        if out and (out[-1].endswith("\\") or (indented and out[-1].lstrip().startswith("comfy"))):
            out[-1] = out[-1].rstrip("\\") + " " + line.strip()
        else:
            out.append(line)
    return out


def command_lines() -> list[tuple[str, str, str]]:
    """(doc, subcommand, the rest of the line) for every comfy-runpod / python client/<x>.py command shown."""
    found = []
    pattern = r"(?:comfy-runpod|python3? client/(\w+)\.py|python3? -m client\.(\w+))\s+([^#\n]*)"
    for doc in DOCS:
        for span in spans(doc):
            for script, module, rest in re.findall(pattern, span):
                words = rest.split()
                name = script or module or (words[0] if words else "")
                rest = rest if (script or module) else " ".join(words[1:])
                if name and not name.startswith(("-", "<", "[")) and name not in ("NAME", "COMMAND"):
                    found.append((doc.name, name, rest))
    return found


# --- the tests ------------------------------------------------------------------------------------------


def test_every_upper_case_name_in_the_docs_is_known_to_the_code():
    unknown = {}
    for doc in DOCS:
        for span in spans(doc):
            for name in re.findall(r"(?<![\w.-])[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+(?![\w.-])", span):  # not in a file name
                if name not in EXTERNAL_NAMES and not known_to_code(name):
                    unknown.setdefault(name, doc.name)
    assert not unknown, f"names the docs give that no code knows: {unknown}"


def _table_rows(doc: Path) -> list[tuple[list[str], str]]:
    """(names, default cell) of each row of the configuration / build-argument tables of a doc."""
    rows, inside = [], False
    for line in doc.read_text().splitlines():
        if line.strip() in ENV_TABLE_HEADERS:
            inside = True
            continue
        if inside and not line.startswith("|"):
            inside = False
        if inside and not line.startswith("|--") and not line.startswith("| ---"):
            cells = [c.strip() for c in line.strip().strip("|").split(" | ")]
            names = re.findall(r"`([A-Z][A-Z0-9_]+)`", cells[0])
            if names and len(cells) >= 3:
                rows.append((names, cells[1]))
    return rows


def test_every_configuration_variable_is_read_with_the_default_the_docs_give():
    reads, problems, checked = env_reads(), [], 0
    for doc in DOCS:
        for names, default_cell in _table_rows(doc):
            for name in names:
                if name not in reads:
                    problems.append(f"{doc.name}: {name} is documented but never read")
                    continue
                values = [v for v in (literal(d) for d in reads[name] if d) if v is not None]
                doc_values = re.findall(r"`([^`]*)`", default_cell)
                blank = not default_cell or default_cell.lower().startswith(("empty", "unset"))
                if len(doc_values) == len(names) > 1:  # `a` / `b` for NAME_A / NAME_B, in order
                    doc_values = [doc_values[names.index(name)]]
                elif len(names) > 1 and not blank:
                    continue
                if blank:  # documented as blank / empty / unset: read without a default
                    if any(v not in ("", None) for v in values):
                        problems.append(f"{doc.name}: {name} is documented blank, the code's default is {values}")
                    checked += 1
                elif doc_values and values:
                    if not any(same(doc_values[0], v) for v in values):
                        problems.append(f"{doc.name}: {name} default `{doc_values[0]}`, the code's: {values}")
                    checked += 1
    assert checked > 40, checked  # the tables were found and compared
    assert not problems, "\n".join(problems)


# Worker settings whose default is computed (by mode, or from another variable), so the source scan above
# cannot read it: each documented default is compared with what Settings.from_env really gives.
COMPUTED_DEFAULTS = {
    "BUCKET_NAME": "bucket_name",
    "PRESIGN_EXPIRES_S": "presign_expires_s",
    "RESPONSE_FORMAT": "response_format",
    "WORKFLOW_REGISTRY_DIR": None,  # None in Settings: workflows/registry, checked by the path test
}


def test_computed_worker_defaults_are_the_ones_the_readme_gives():
    from handler.config import Settings

    settings, rows = Settings.from_env({}), dict((n[0], cell) for n, cell in _table_rows(REPO / "README.md"))
    for name, field in COMPUTED_DEFAULTS.items():
        assert name in rows, name
        if field is None:
            continue
        documented = re.findall(r"`([^`]*)`", rows[name])[0]
        assert same(documented, getattr(settings, field)), (name, documented, getattr(settings, field))


def test_every_command_line_names_a_real_subcommand_action_and_flags():
    from client.cli import COMMANDS

    flags, actions, _ = cli()
    common = {"--url", "--comfy-url", "--endpoint-id", "--api-key", "--timeout", "--poll-interval", "--retries"}
    problems, seen = [], 0
    for doc, name, rest in command_lines():
        seen += 1
        if name not in dict(COMMANDS):
            problems.append(f"{doc}: `{name}` is not a comfy-runpod subcommand")
            continue
        words = [w for w in rest.split() if not w.startswith(("-", "[", "<", "$", '"', "'"))]
        if name in actions and words and re.fullmatch(r"[a-z|\\]+", words[0]):
            for action in words[0].replace("\\", "").split("|"):
                if action not in actions[name]:
                    problems.append(f"{doc}: `{name} {action}`: no such action ({sorted(actions[name])})")
        for flag in re.findall(r"(?<![\w-])(--[a-z][a-z0-9-]*)", rest):
            if flag not in flags[name] and flag not in common:
                problems.append(f"{doc}: `comfy-runpod {name} {flag}`: {name} has no such flag")
    assert seen > 40, seen
    assert not problems, "\n".join(problems)


def test_every_backticked_flag_exists():
    flags, _, _ = cli()
    everything = set().union(*flags.values()) | other_flags()
    unknown = {
        flag: doc.name
        for doc in DOCS
        for span in spans(doc)
        for flag in re.findall(r"(?<![\w-])(--[a-z][a-z0-9_-]*)", span)
        if flag not in everything
    }
    assert not unknown, unknown


def test_flag_defaults_the_docs_state_are_the_parsers():
    flags, _, defaults = cli()
    problems, checked = [], 0
    for doc in DOCS:
        text = doc.read_text()
        for flag, value in re.findall(r"`(--[a-z][a-z0-9-]*)[^`]*`,? \(?default:? `?([\w.]+)", text):
            owners = [name for name, options in flags.items() if flag in options]
            if not owners:
                continue
            checked += 1
            if not any(same(value, defaults[n][flag]) for n in owners):
                problems.append(
                    f"{doc.name}: {flag} default {value}, the parser's: {[defaults[n][flag] for n in owners]}"
                )
    assert checked >= 2, checked
    assert not problems, "\n".join(problems)


def test_the_subcommand_lists_are_complete():
    from client.cli import COMMANDS

    names = {name for name, _ in COMMANDS}
    actions = cli()[1]["jobs"]  # what the parser takes
    readme = (REPO / "README.md").read_text()
    listed = re.search(r"^Subcommands: (.*)$", readme, re.M)
    assert listed and set(re.findall(r"`(\w+)`", listed.group(1))) == names
    client_md = (REPO / "docs/client.md").read_text()
    table = set(re.findall(r"^\| `comfy-runpod (\w+)", client_md, re.M))
    assert table == names, sorted(names ^ table)
    envelope = re.search(r'"command": "([\w|]+)"', client_md)
    assert envelope and set(envelope.group(1).split("|")) == names
    jobs_row = re.search(r"`comfy-runpod jobs ([\w\\|]+)`", client_md)
    assert jobs_row and set(jobs_row.group(1).replace("\\", "").split("|")) == actions
    usage = re.findall(r"^comfy-runpod jobs (\w+)", client_md, re.M)
    assert set(usage) == actions, usage


def test_every_repository_path_and_link_exists():
    prefixes = (
        r"(?:handler|client|workflows|comfyui_client|tools|tests|docs|benchmarks|docker|scripts|requirements|mk|\.ci)/"
    )
    missing = []
    for doc in DOCS:
        for span in spans(doc):
            for word in span.split():
                word = word.strip("(),;:'\"")
                example = any(name in word for name in EXAMPLE_ENTRIES)
                if not re.match(prefixes, word) or "<" in word or example or word.startswith(IGNORED_PATHS):
                    continue
                if not list(REPO.glob(word.rstrip("/"))) and not _module_attribute(word):
                    missing.append(f"{doc.name}: {word}")
        for target, anchor in re.findall(r"\]\((?!https?:|#)([^)#\s]+)(?:#([^)\s]+))?\)", doc.read_text()):
            path = (doc.parent / target).resolve()
            if not path.exists():
                missing.append(f"{doc.name}: link {target}")
            elif anchor and path.suffix == ".md" and anchor not in _anchors(path):
                missing.append(f"{doc.name}: link {target}#{anchor}")
        for anchor in re.findall(r"\]\(#([^)\s]+)\)", doc.read_text()):
            if anchor not in _anchors(doc):
                missing.append(f"{doc.name}: link #{anchor}")
    assert not missing, "\n".join(missing)


def _module_attribute(word: str) -> bool:
    """`workflows/hf_cache.cache_plan`: a name defined in a module given by its path."""
    module, _, attr = word.rpartition(".")
    path = REPO / f"{module}.py"
    return (
        bool(attr) and path.is_file() and bool(re.search(rf"^(?:def|class) {attr}\b|^{attr}\b", path.read_text(), re.M))
    )


def _anchors(path: Path) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens."""
    headings = re.findall(r"^#+ (.+)$", path.read_text(), re.M)
    return {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-") for h in headings}


def test_the_readme_layout_names_files_where_they_are():
    readme = (REPO / "README.md").read_text()
    layout = readme.split("## Layout", 1)[1].split("\n## ", 1)[0]
    problems = []
    for row in re.findall(r"^\| (`[^|]+`) \| (.+) \|$", layout, re.M):
        dirs = re.findall(r"`([\w./]+/)`", row[0])
        if len(dirs) != 1:
            continue
        for name in re.findall(r"`([\w/]+\.(?:py|yaml|json|sh))`", row[1]):
            if not list((REPO / dirs[0]).rglob(name)):
                problems.append(f"{dirs[0]}{name}")
    assert not problems, f"the README's layout names files that are not there: {problems}"


@pytest.mark.parametrize("phrase", ["once the console script exists", "seven workflows"])
def test_known_stale_phrases_are_gone(phrase: str):
    assert not [d.name for d in DOCS if phrase in d.read_text()]
