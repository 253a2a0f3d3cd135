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
        *_signature_section(),
    ]
    return "\n".join(lines)


def _signature_section() -> list[str]:
    """The failure-signature table's figures (tests/faults/figures.py) and the held-out split."""
    from collections import Counter

    from tests.faults.figures import answer, heldout, summary
    from workflows.signatures import signatures

    figures = summary()
    table = signatures()
    codes = Counter(s.code for s in table)
    lines = [
        "## Failures at start, at import and during a job (signature table)",
        "",
        f"`workflows/signatures.yaml` holds {len(table)} failure texts of ComfyUI and the big packs, each drawn "
        "from its public thread",
        "(`source`), mapping an exception type and message to a specific code, cause and fix. The worker reads",
        "a node's exception, ComfyUI ending at start and a pack failing to import through it; where nothing",
        "matches, the answer leads with the exception's own type, message and raising frame.",
        "Codes: " + ", ".join(f"`{code}` ({n})" for code, n in sorted(codes.items())) + ".",
        "",
        "**Generality, measured by `tests/faults/figures.py`** (this page is regenerated from it):",
        "",
        f"- detection on the held-out split: **{figures['heldout_detected']} of {figures['heldout_total']} "
        f"({figures['detection_rate']:.0%})** — field faults from {figures['heldout_total']} public threads that "
        "were the source of no signature (`tests/faults/heldout.yaml`), staged on the real stack by "
        "`tests/faults/test_heldout.py`; missed: "
        + (", ".join(f"`{i}`" for i in figures["heldout_missed"]) or "none")
        + ".",
        f"- generic answers in the whole catalogue: **{figures['generic_answers']} of "
        f"{figures['catalogue_answers']} ({figures['generic_share']:.1%})** — signature examples, held-out faults, "
        "the tables above and the start-failure catalogue; generic means a catch-all code (`GENERATION_ERROR`, "
        "`COMFY_START_FAILED`, `QUEUE_FAILED`, `INTERNAL_ERROR`) or a catch-all's fix: "
        + (", ".join(f"`{i}`" for i in figures["generic_ids"]) or "none")
        + ".",
        "",
        "### Held-out split",
        "",
        "| held-out fault | stage | exception | expected | answered | source |",
        "|---|---|---|---|---|---|",
    ]
    for case in heldout():
        got = answer(case["stage"], case["type"], case["message"])[0]
        first = case["message"].splitlines()[0].replace("|", "/")[:90]
        exception = f"{case['type']}: {first}"
        expected = f"`{case['code']}` | `{got}`"
        lines.append(f"| {case['id']} | {case['stage']} | {exception} | {expected} | {case['source']} |")
    return [*lines, ""]


if __name__ == "__main__":
    (REPO / "docs/faults.md").write_text(render())
    print("docs/faults.md written")
