"""Regenerate the documentation's code tables from the code: `python -m tools.doc_tables`.

- README's error table from workflows.errors.CODES,
- README's finding table from workflows.findings.FINDINGS (severity, meaning, fix),
- docs/client.md's client error table from client.errors.client_codes() (exit code, meaning, fix),
- README's endpoint table (GPU memory, disk per registered workflow) from workflows.deploy.endpoint_plan,
  and its model-cache table (the repository to set as the endpoint's Model, what it serves) from its `cache`.

tests/test_docs.py fails when a document and its code table disagree; this writes the tables so adding
a code is one edit in one place.
"""

from __future__ import annotations

import sys
from pathlib import Path

from client.errors import client_codes
from workflows.deploy import endpoint_plan
from workflows.errors import CODES
from workflows.findings import FINDINGS
from workflows.registry import default_registry

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
CLIENT_DOC = ROOT / "docs" / "client.md"
START, END = "<!-- error-table -->", "<!-- /error-table -->"


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def error_table() -> str:
    rows = ["| code | what to do | `logs_tail` | worker recycled |", "|---|---|---|---|"]
    for code in CODES.values():
        yes = {True: "yes", False: "no"}
        rows.append(f"| `{code.name}` | {code.fix} | {yes[code.comfy_involved]} | {yes[code.refresh_worker]} |")
    return "\n".join(rows)


def finding_table() -> str:
    rows = ["| code | severity | meaning | fix |", "|---|---|---|---|"]
    rows += [f"| `{f.code}` | {f.severity} | {_cell(f.meaning)} | {_cell(f.fix)} |" for f in FINDINGS.values()]
    return "\n".join(rows)


def client_error_table() -> str:
    rows = ["| code | exit | meaning | fix |", "|---|---|---|---|"]
    for code, exit_code, meaning, fix in client_codes():
        rows.append(f"| `{code}` | {exit_code} | {_cell(meaning)} | {_cell(fix) or 'see the message'} |")
    return "\n".join(rows)


def deploy_table() -> str:
    rows = [
        "| workflow | models | GPU memory: runs / recommended | container disk, models baked | "
        "registry timing: cold start / generate |",
        "|---|---|---|---|---|",
    ]
    for entry in sorted(default_registry().entries.values(), key=lambda e: (e.runs_on_cpu, e.id)):
        p = endpoint_plan(entry)
        gpu = f"{p.vram_min_gb} GB / {p.vram_gb} GB" if p.gpu else "any (runs on CPU)"
        timing = f"{p.cold_start_s:g} s / {p.generate_s:g} s" if p.cold_start_s and p.generate_s else "–"
        models = f"{p.models_gb:g} GB (largest {p.largest_gb:g})" if p.models_gb else "none"
        rows.append(f"| `{p.workflow}` | {models} | {gpu} | {p.disk_baked_gb} GB | {timing} |")
    return "\n".join(rows)


def cache_table() -> str:
    rows = [
        "| workflow | endpoint Model (RunPod's cache) | models it serves | still from the image or the volume |",
        "|---|---|---|---|",
    ]
    for entry in sorted(default_registry().entries.values(), key=lambda e: (e.runs_on_cpu, e.id)):
        c = endpoint_plan(entry).cache
        if c.total == 0:
            continue
        repo = f"`{c.repo}`" if c.repo else "none (no Hugging Face URL)"
        served = f"{len(c.covered)} of {c.total} ({c.covered_gb:g} GB)"
        rest = ", ".join(f"`{r}`" for r in c.rest) + f" ({c.rest_gb:g} GB)" if c.rest else "nothing"
        rows.append(f"| `{entry.id}` | {repo} | {served} | {rest} |")
    return "\n".join(rows)


TABLES = {  # marker name -> (file, generator)
    "error-table": (README, error_table),
    "finding-table": (README, finding_table),
    "client-error-table": (CLIENT_DOC, client_error_table),
    "deploy-table": (README, deploy_table),
    "cache-table": (README, cache_table),
}


def section(text: str, name: str) -> str:
    """The text between <!-- name --> and <!-- /name -->."""
    return text.split(f"<!-- {name} -->", 1)[1].split(f"<!-- /{name} -->", 1)[0].strip("\n")


def replace_section(text: str, name: str, body: str) -> str:
    head, rest = text.split(f"<!-- {name} -->", 1)
    _, tail = rest.split(f"<!-- /{name} -->", 1)
    return f"{head}<!-- {name} -->\n{body}\n<!-- /{name} -->{tail}"


def main() -> int:
    for name, (path, make) in TABLES.items():
        path.write_text(replace_section(path.read_text(), name, make()))
        print(f"{path.relative_to(ROOT)}: {name} regenerated")
    return 0


if __name__ == "__main__":
    sys.exit(main())
