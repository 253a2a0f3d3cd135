"""The real custom node packs (RES4LYF, ComfyUI-VideoHelperSuite at the registry's pins) in the real stack.

They come from tools/packs.py (a snapshot in COMFY_PACKS_SNAPSHOTS, else GitHub). Without a source the
`real_packs` fixture fails these tests with the way to provide one; they never skip.
"""

from __future__ import annotations

import base64
import io
import json
import os
import subprocess
import sys

import av
import pytest

from tests.conftest import ABSENT_PACK, REAL_PACKS, REPO, nowhere_git, png_base64, runsync
from tools.localstack import DEFAULT_COMFY_HOME
from tools.packs import PackUnavailable, ensure_pack, install_packs
from workflows.registry import default_registry

REGISTRY = default_registry()


def output_of(envelope: dict) -> dict:
    assert envelope["status"] == "COMPLETED", envelope
    return envelope["output"]


def test_real_packs_are_loaded_with_their_nodes(real_packs):
    out = output_of(runsync(real_packs, {"mode": "diagnose", "workflow": "smoke_vhs"}))
    packs = {p["name"]: p for p in out["custom_nodes"]["packs"]}
    for name in REAL_PACKS:
        assert packs[name]["failed"] is False, packs[name]
    info = real_packs.comfy_dir / "custom_nodes"
    for name in REAL_PACKS:
        assert (info / name / ".pack-source").read_text().split() == [
            p.repo for p in REGISTRY.packs() if p.name == name
        ] + [p.commit for p in REGISTRY.packs() if p.name == name]
        assert packs[name]["commit"] == next(p.commit for p in REGISTRY.packs() if p.name == name)
    assert packs["rp_test_nodes"]["commit"] is None  # a folder copied in: no .git, no .pack-source


def test_denrisi_diagnose_reports_only_missing_models_with_res4lyf_loaded(real_packs):
    """Nodes, inputs and values of z_image_turbo_denrisi match the real RES4LYF: only the models are absent."""
    out = output_of(runsync(real_packs, {"mode": "diagnose", "workflow": "z_image_turbo_denrisi"}))
    check = out["workflow_checks"]["z_image_turbo_denrisi"]
    assert check["missing_nodes"] == [], check
    codes = {f["code"] for f in check["findings"]}
    assert codes == {"MODEL_MISSING"}, check["findings"]
    expected = {m.name for m in REGISTRY.get("z_image_turbo_denrisi").models}
    missing = {name for names in check["missing_models"].values() for name in names}
    assert missing == expected


def test_vhs_video_combine_output_comes_back_as_a_video(real_packs):
    out = output_of(
        runsync(
            real_packs,
            {"workflow": "smoke_vhs", "image_base64": png_base64(80, 60), "frames": 12, "fps": 6},
        )
    )
    video = out["outputs"][0]
    assert video["kind"] == "video" and video["mime"] == "video/mp4" and video["node_id"] == "4"
    with av.open(io.BytesIO(base64.b64decode(out["video_base64"]))) as container:
        frames = list(container.decode(video=0))
    assert len(frames) == 12 == out["frames"] == video["frames"]
    assert (frames[0].width, frames[0].height) == (128, 128)
    assert out["fps"] == 6 and out["duration_sec"] == 2


def test_static_selfcheck_passes_with_the_real_packs(tmp_path):
    """handler.selfcheck --static against ComfyUI's source + the real packs: every node they must define is
    found; only the workflows needing the pack that has no source here are left out (--only-packs)."""
    root = tmp_path / "ComfyUI"
    root.mkdir()
    comfy = DEFAULT_COMFY_HOME / "ComfyUI"
    for name in ("nodes.py", "comfy_extras", "comfy_api_nodes"):
        (root / name).symlink_to(comfy / name)
    try:
        install_packs(root / "custom_nodes", REAL_PACKS)
    except PackUnavailable as exc:
        pytest.fail(f"the real custom node packs are not available: {exc}", pytrace=False)

    def static(*args: str) -> tuple[int, dict]:
        proc = subprocess.run(
            [sys.executable, "-m", "handler.selfcheck", "--static", "--json", "--comfy-dir", str(root), *args],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=120,
            env={"PATH": os.environ["PATH"], "COMFY_EXTRA_MODEL_PATHS": str(REPO / "extra_model_paths.yaml")},
        )
        return proc.returncode, json.loads(proc.stdout)

    code, result = static("--only-packs", ",".join(REAL_PACKS))
    assert (code, result["findings"]) == (0, [])
    assert {"z_image_turbo_denrisi", "smoke_vhs"} <= set(result["workflows"])
    assert set(result["packs"]) == set(REAL_PACKS) and all(result["packs"].values())

    # Without the filter, the only nodes missing are those of the pack that has no snapshot.
    code, result = static()
    missing = [f for f in result["findings"] if f["code"] == "NODE_MISSING"]
    assert code == 1 and missing and all(ABSENT_PACK in f["fix"] for f in missing), missing
    assert {f["code"] for f in result["findings"]} == {"NODE_MISSING"}


def test_a_pack_without_a_source_fails_with_how_to_provide_it(tmp_path, monkeypatch):
    monkeypatch.setenv("COMFY_PACKS_SNAPSHOTS", str(tmp_path / "no-snapshots"))
    nowhere_git(monkeypatch, tmp_path)
    with pytest.raises(PackUnavailable) as exc:
        ensure_pack("RES4LYF", cache=tmp_path / "cache")
    message = str(exc.value)
    assert "COMFY_PACKS_SNAPSHOTS" in message and "RES4LYF-7750bf7800b6ad9d670308a09989fc0c04c40cec.tar.gz" in message
    assert not (tmp_path / "cache" / "RES4LYF-7750bf7800b6ad9d670308a09989fc0c04c40cec").exists()
