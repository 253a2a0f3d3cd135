"""The deploy-time self-check: --static against the real ComfyUI source, --live against the stack."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.conftest import REPO
from tools.localstack import DEFAULT_COMFY_HOME

COMFY_ROOT = DEFAULT_COMFY_HOME / "ComfyUI"


def selfcheck(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "handler.selfcheck", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        env={"PATH": "/usr/bin:/bin", **(env or {})},
    )


def static(*args: str, root=COMFY_ROOT) -> tuple[int, dict]:
    proc = selfcheck(
        "--static",
        "--json",
        "--comfy-dir",
        str(root),
        *args,
        env={"COMFY_EXTRA_MODEL_PATHS": str(REPO / "extra_model_paths.yaml")},
    )
    return proc.returncode, json.loads(proc.stdout)


def test_static_names_every_missing_pack_node_from_the_source_without_importing_it():
    code, result = static()
    assert code == 1 and result["ok"] is False
    assert result["core_nodes"] > 400  # ComfyUI's own nodes, found by reading nodes.py and comfy_extras
    missing = {f["message"].split(" ")[0]: f for f in result["findings"] if f["code"] == "NODE_MISSING"}
    assert "ClownsharKSampler_Beta" in missing and "RES4LYF" in missing["ClownsharKSampler_Beta"]["fix"]
    assert "VHS_VideoCombine" in missing and "SaveImage" not in missing


def test_static_passes_when_the_packs_are_present(tmp_path):
    root = tmp_path / "ComfyUI"
    root.mkdir()
    (root / "nodes.py").symlink_to(COMFY_ROOT / "nodes.py")
    (root / "comfy_extras").symlink_to(COMFY_ROOT / "comfy_extras")
    from workflows.registry import default_registry

    for pack in default_registry().packs():  # a pack that defines exactly its nodes, the two common ways
        pack_dir = root / "custom_nodes" / pack.name
        pack_dir.mkdir(parents=True)
        first, second, *rest = (*pack.nodes, None)
        body = f"NODE_CLASS_MAPPINGS = {{{first!r}: object}}\n"
        if second:
            body += f"NODE_CLASS_MAPPINGS.update({{{second!r}: object}})\n"
        body += "".join(f"NODE_CLASS_MAPPINGS[{n!r}] = object\n" for n in rest if n)
        (pack_dir / "__init__.py").write_text(body)
    code, result = static(root=root)
    assert (code, result["findings"]) == (0, [])
    assert set(result["packs"]) == {p.name for p in default_registry().packs()}


def test_static_takes_the_registry_record_for_a_pack_installed_at_its_pin_and_only_then(tmp_path):
    """A pack whose mappings are built in code (rgthree's computed names) can't be read from source: a pack
    installed at exactly the pinned commit (.pack-source) is judged by the nodes the registry records for it."""
    import shutil

    from workflows.registry import REGISTRY_DIR, default_registry

    registry = tmp_path / "registry"
    shutil.copytree(REGISTRY_DIR, registry)
    root = tmp_path / "ComfyUI"
    root.mkdir()
    (root / "nodes.py").symlink_to(COMFY_ROOT / "nodes.py")
    (root / "comfy_extras").symlink_to(COMFY_ROOT / "comfy_extras")
    for pack in default_registry().packs():
        pack_dir = root / "custom_nodes" / pack.name
        pack_dir.mkdir(parents=True)
        (pack_dir / "__init__.py").write_text("NODE_CLASS_MAPPINGS = {cls.NAME: cls for cls in CLASSES}\n")
        (pack_dir / ".pack-source").write_text(f"{pack.repo} {pack.commit}\n")

    def run() -> tuple[int, dict]:
        proc = selfcheck(
            "--static",
            "--json",
            "--comfy-dir",
            str(root),
            env={
                "COMFY_EXTRA_MODEL_PATHS": str(REPO / "extra_model_paths.yaml"),
                "WORKFLOW_REGISTRY_DIR": str(registry),
            },
        )
        return proc.returncode, json.loads(proc.stdout)

    assert run()[0] == 0
    res4lyf = next(p for p in default_registry().packs() if p.name == "RES4LYF")
    (root / "custom_nodes" / "RES4LYF" / ".pack-source").write_text(f"{res4lyf.repo} {'0' * 40}\n")
    code, result = run()
    missing = {f["message"].split(" ")[0] for f in result["findings"] if f["code"] == "NODE_MISSING"}
    assert code == 1 and "ClownsharKSampler_Beta" in missing and "VHS_VideoCombine" not in missing


def test_static_cpu_only_and_bad_model_paths(tmp_path):
    code, result = static("--cpu-only")
    assert code == 0 and result["workflows"] == ["smoke_i2v", "smoke_image"]
    bad = tmp_path / "paths.yaml"
    bad.write_text("volume:\n  checkpointz: models/x/\n")
    proc = selfcheck(
        "--static", "--cpu-only", "--comfy-dir", str(COMFY_ROOT), env={"COMFY_EXTRA_MODEL_PATHS": str(bad)}
    )
    assert proc.returncode == 1 and "MODEL_PATHS_INVALID" in proc.stdout and "base_path" in proc.stdout


def test_static_could_not_run_is_exit_2(tmp_path):
    proc = selfcheck("--static", "--comfy-dir", str(tmp_path))
    assert proc.returncode == 2 and "nodes.py not found" in proc.stdout


@pytest.mark.stack
def test_live_runs_diagnose_and_a_smoke_workflow(stack):
    env = {k: v for k, v in stack.env().items() if k.startswith(("COMFY_", "RUNPOD_VOLUME"))}
    env.update(
        COMFY_URL=stack.comfy_url,
        COMFY_INPUT_DIR=str(stack.comfy_dir / "input"),
        COMFY_OUTPUT_DIR=str(stack.comfy_dir / "output"),
        COMFY_TEMP_DIR=str(stack.comfy_dir / "temp"),
    )
    proc = selfcheck("--live", "--json", env=env)
    result = json.loads(proc.stdout)
    assert result["smoke"]["ok"] is True and result["smoke"]["ms"] > 0
    # The session stack carries a deliberately broken pack: the live check must fail on it.
    assert proc.returncode == 1 and [f["code"] for f in result["findings"]] == ["PACK_IMPORT_FAILED"]
    proc = selfcheck("--live", env={**env, "COMFY_URL": "http://127.0.0.1:9"})
    assert proc.returncode == 2 and "not answering" in proc.stdout


# Strict mode failing at start: tests/start_failures/test_catalogue.py::test_strict_self_check_fails
# (the worker keeps answering every job with SELF_CHECK_FAILED instead of exiting).
