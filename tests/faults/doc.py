"""Write docs/faults.md from the catalogue: `python -m tests.faults.doc` (test_faults checks they agree)."""

from __future__ import annotations

from tests.conftest import REPO
from tests.faults.catalogue import DISK_FAULTS, JOB_FAULTS


def render() -> str:
    rows = (*DISK_FAULTS, *JOB_FAULTS)
    field = [f for f in rows if f.source.startswith("http")]
    lines = [
        "# Fault catalogue",
        "",
        "Deployment faults people hit with ComfyUI on RunPod, drawn from public issue threads, and what this",
        "worker answers for each. Every row is staged against the real stack by `tests/faults/test_faults.py`",
        "(the rows live in `tests/faults/catalogue.py`; this page is written by `python -m tests.faults.doc`):",
        "disk faults are put on the image's models dir or the stand-in network volume before ComfyUI starts",
        "and judged by one `diagnose`; job faults are sent to `generate` and refused before ComfyUI sees them.",
        "Start-up faults (ComfyUI not starting, missing dependencies, ports) are staged in",
        "`tests/start_failures/` (issue 12) and are not repeated here.",
        "",
        f"{len(rows)} rows, {len(field)} of them traced to a public thread ({len({f.source for f in field})} distinct"
        " threads; the goal was 40 field faults). Rows marked",
        "*(staged only)* have no field report found behind them; rows marked *issue 13* come from the issue",
        "that asked for this catalogue.",
        "",
        "## Disk, volume and model files (`diagnose`)",
        "",
        "| id | area | fault | code | source |",
        "|---|---|---|---|---|",
    ]
    lines += [f"| `{f.id}` | {f.area} | {f.fault} | `{f.code}` | {f.source} |" for f in DISK_FAULTS]
    lines += [
        "",
        "## Jobs (`generate`, judged before queueing)",
        "",
        "| id | area | fault | code | source |",
        "|---|---|---|---|---|",
    ]
    lines += [f"| `{f.id}` | {f.area} | {f.fault.replace('|', '/')} | `{f.code}` | {f.source} |" for f in JOB_FAULTS]
    lines += [
        "",
        "The message and fix of each answer name the cause: the folder and the download URL of a missing",
        "model, where a file really is, the pack of a missing node and whether it is installed at another",
        'version (installed and pinned commits), the listed name a near miss meant ("did you mean …"), the',
        "node and the saved vs expected widget counts of an editor workflow saved with another node version.",
        "",
        "Not in the table: an unreadable model folder (`MODEL_FOLDER_UNREADABLE`). The stack's worker runs",
        "as root, which reads anything, so `tests/faults/test_model_tree.py` stages it on disk and runs the",
        "worker's scan with the effective uid of `nobody`.",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    (REPO / "docs/faults.md").write_text(render())
    print("docs/faults.md written")
