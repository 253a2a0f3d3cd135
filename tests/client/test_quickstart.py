"""The README's deploy quick start, run: every `comfy-runpod` command of it against the local stack.

Only the target and the GPU names change: `--url` instead of RUNPOD_ENDPOINT_ID (the same client code
path, tests/client/test_cloud_fake.py covers the cloud's), the CPU workflow `smoke_image` for
z_image_turbo_denrisi and the `smoke` suite for `denrisi` (no GPU or Z-Image models here). The build
and push (Docker, a registry) and the volume check (RunPod's S3 API) can't run here.
"""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO

GPU_TO_CPU = {"z_image_turbo_denrisi": "smoke_image", "denrisi": "smoke"}


def quickstart_commands() -> list[list[str]]:
    readme = (REPO / "README.md").read_text()
    section = readme.split("## Deploy on RunPod: quick start", 1)[1].split("\n## ", 1)[0]
    commands = []
    for line in section.splitlines():
        for match in re.finditer(r"(?:^|&& )(comfy-runpod [^#\n]+)", line.strip()):
            words = shlex.split(match.group(1))
            if words[1] == "volume":  # step 0: RunPod's S3 API, not reachable here
                continue
            commands.append(words)
    return commands


def test_the_quickstart_names_each_step():
    steps = [c[1:3] for c in quickstart_commands()]
    assert ["diagnose", "--test"] in steps and ["diagnose", "--workflow"] in steps
    assert steps.count(["validate", "--suite"]) == 2  # step 5 and the CI step
    readme = (REPO / "README.md").read_text()
    # the two set-up commands first, then the deploy quick start, before everything else
    top = readme.split("## Worked example")[0]
    assert top.index("## Two commands") < top.index("## Deploy on RunPod: quick start")
    assert "--platform linux/amd64" in top and "There is no prebuilt image" in top


def test_every_quickstart_command_passes_against_the_local_stack(stack, tmp_path: Path):
    cli = Path(sys.executable).parent / "comfy-runpod"
    ran = []
    for words in quickstart_commands():
        args = [GPU_TO_CPU.get(w, w) for w in words[1:]]
        args = [str(tmp_path / "reports") if a.startswith("reports") else a for a in args]
        if args[0] == "validate":
            args += ["--runs", "2"]
        proc = subprocess.run(
            [str(cli), *args, "--url", stack.api_url, "--json"],
            capture_output=True,
            text=True,
            timeout=240,
            cwd=tmp_path,
        )
        out = json.loads(proc.stdout)
        if args[:2] == ["diagnose", "--workflow"]:
            # every test stack carries a deliberately broken fixture pack (tests/fixtures/custom_nodes): its
            # PACK_IMPORT_FAILED is the one error allowed; the workflow itself must be ok
            result = out["result"]
            assert result["response"]["workflow_checks"]["smoke_image"]["ok"] is True
            errors = [f for f in result["findings"] if f["severity"] == "error"]
            assert all(f["code"] == "PACK_IMPORT_FAILED" and "rp_broken_pack" in f["message"] for f in errors), errors
            assert proc.returncode == (1 if errors else 0)
        else:
            assert proc.returncode == 0, f"{args}: {proc.stdout[-2000:]}{proc.stderr[-2000:]}"
            assert out["ok"] is True
        ran.append(args[0])
    assert ran.count("diagnose") == 2 and ran.count("validate") == 2
    report = json.loads((tmp_path / "reports" / "report.json").read_text())
    assert report["timing"]["workflows"]["smoke_image"]["warm_runs"] == 1  # the split is reported
    assert (tmp_path / "reports" / "junit.xml").is_file()
