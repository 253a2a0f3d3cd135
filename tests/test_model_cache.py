"""RunPod's model cache (issue 28): the Hugging Face cache layout, staged by huggingface_hub itself from a
local server that answers as huggingface.co does, found and linked by the worker, and a registered
workflow run from it on the real stack (CPU ComfyUI 0.3.75, the SDK's local API)."""

from __future__ import annotations

import base64
import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from handler.model_cache import _clear_links, cache_findings, link_cached_models, lookup
from tests.conftest import FIXTURES, REPO, make_stack, runsync, wait_for_startup_selfcheck
from tests.hf_standin import COMMIT, HubFile, HubStandIn
from tests.model_files import make_taesd, stage_cache, tiny_upscale_model
from tools.localstack import DEFAULT_COMFY_HOME
from workflows.hf_cache import HfFile, cache_plan, hf_file, lookup_findings
from workflows.registry import ModelSpec, default_registry, load_registry

COMFY_PYTHON = str(DEFAULT_COMFY_HOME / "venv/bin/python")
CACHED_REPO = "comfy-runpod-test/tiny-upscale"
CACHED_PATH = "split_files/upscale_models/tiny_compact_x2.safetensors"


# --- the pure mapping ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (
            "https://huggingface.co/Comfy-Org/z_image_turbo/resolve/main/split_files/vae/ae.safetensors",
            HfFile("Comfy-Org/z_image_turbo", "main", "split_files/vae/ae.safetensors"),
        ),
        (
            "https://huggingface.co/Kijai/WanVideo_comfy/blob/" + COMMIT + "/umt5.safetensors?download=true",
            HfFile("Kijai/WanVideo_comfy", COMMIT, "umt5.safetensors"),
        ),
        ("https://hf.co/a/b/resolve/v1.0/x%20y.safetensors", HfFile("a/b", "v1.0", "x y.safetensors")),
        ("https://huggingface.co/datasets/a/b/resolve/main/x.safetensors", None),
        ("https://huggingface.co/a/b/resolve/main/../../etc/passwd", None),
        ("https://huggingface.co/a/b/resolve/main/..%2F..%2F..%2Fetc%2Fpasswd", None),  # one segment, 3 steps up
        ("https://huggingface.co/a/b/resolve/refs%2Fpr%2F1/x.safetensors", HfFile("a/b", "refs/pr/1", "x.safetensors")),
        ("https://[huggingface.co/a/b/resolve/main/x.safetensors", None),  # urlsplit's ValueError: no file
        ("https://civitai.com/api/download/models/1", None),
        ("https://huggingface.co/a/b", None),
        (None, None),
    ],
)
def test_hf_file_reads_the_repository_revision_and_path_from_a_registry_url(url, expected):
    assert hf_file(url) == expected


def test_the_cache_plan_names_the_repository_that_serves_most_of_each_workflow():
    entries = default_registry().entries
    z = cache_plan(entries["z_image_turbo"])
    assert (z.repo, len(z.covered), z.total, z.rest) == ("Comfy-Org/z_image_turbo", 3, 3, ())
    wan = cache_plan(entries["wan22_i2v"])
    assert wan.repo == "Comfy-Org/Wan_2.2_ComfyUI_Repackaged" and len(wan.covered) == 3 and wan.total == 4
    assert wan.rest == ("text_encoders/umt5-xxl-enc-bf16.safetensors",) and wan.rest_gb > 10
    assert cache_plan(entries["smoke_image"]).repo is None


def test_device_loads_pair_each_request_with_its_loaded_line_in_order():
    from workflows.load_log import device_loads, first_device_loads

    # ComfyUI 0.3.75's format strings (comfy/model_management.py, comfy/model_patcher.py), two models at once
    lines = [
        (10.0, "got prompt"),
        (10.5, "Requested to load WAN21"),
        (10.5, "Requested to load WanVAE"),
        (
            14.0,
            "loaded partially; 9000.00 MB usable, 8800.50 MB loaded, 5500.00 MB offloaded, 0.00 MB buffer "
            "reserved, lowvram patches: 0",
        ),
        (14.25, "loaded completely; 200.00 MB usable, 242.03 MB loaded, full load: True"),
        (20.0, "Requested to load WanVAE"),
        (20.5, "loaded completely; 200.00 MB usable, 242.03 MB loaded, full load: True"),
        (21.0, "loaded completely; stray line without a request"),
    ]
    loads = device_loads(lines)
    assert [(x.model, x.seconds, x.mb, x.full) for x in loads] == [
        ("WAN21", 3.5, 8800.5, False),
        ("WanVAE", 0.25, 242.03, True),
        ("WanVAE", 0.5, 242.03, True),
    ]
    assert first_device_loads(lines)["WanVAE"] == {"model": "WanVAE", "s": 0.25, "mb": 242.03, "full": True}


# --- the layout huggingface_hub writes, found by the worker ---------------------------------------


@pytest.fixture(scope="module")
def staged(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A cache written by huggingface_hub: one finished repository, one whose blob vanished after the
    snapshot link was made, one with only a partial blob."""
    cache = tmp_path_factory.mktemp("hf") / "huggingface-cache/hub"
    # LFS files (302 to the CDN, blobs/<sha256>) as model weights are; one git-stored (200, blobs/<blob id>)
    files = [
        HubFile(CACHED_REPO, CACHED_PATH, tiny_upscale_model(1)),
        HubFile("comfy-runpod-test/dangling", "tiny_dangling_x2.safetensors", tiny_upscale_model(2)),
        HubFile("comfy-runpod-test/partial", "tiny_partial_x2.safetensors", tiny_upscale_model(3), lfs=False),
    ]
    with HubStandIn(files) as hub:
        for f in files:
            stage_cache(cache, hub.url, f.repo, [f.path])
    dangling = cache / "models--comfy-runpod-test--dangling"
    for blob in (dangling / "blobs").iterdir():
        blob.unlink()
    partial = cache / "models--comfy-runpod-test--partial"
    for blob in (partial / "blobs").iterdir():
        blob.rename(blob.with_name(blob.name + ".incomplete"))  # how huggingface_hub names a download in progress
    shutil.rmtree(partial / "snapshots")
    return cache


def test_the_stand_in_answers_an_lfs_head_as_huggingface_co_does():
    """One HEAD, stopped at the 302 to the CDN (another origin): commit, sha256 and size from its headers."""
    from huggingface_hub import get_hf_file_metadata, hf_hub_url

    f = HubFile(CACHED_REPO, CACHED_PATH, tiny_upscale_model(1))
    with HubStandIn([f]) as hub:
        meta = get_hf_file_metadata(hf_hub_url(f.repo, f.path, endpoint=hub.url), endpoint=hub.url)
        assert (meta.commit_hash, meta.etag, meta.size) == (COMMIT, f.sha256, len(f.data))
        cdn = hub.url.replace("127.0.0.1", "localhost")  # another origin, as huggingface.co's CDN is
        assert meta.location.startswith(cdn + "/cdn/") and hub.requests == [f"HEAD /{f.repo}/resolve/main/{f.path}"]


def _spec(url: str, name: str = "x.safetensors") -> ModelSpec:
    return ModelSpec("upscale_models", name, url)


def test_lookup_finds_what_huggingface_hub_wrote_and_agrees_with_its_own_cache_lookup(staged):
    found = lookup(staged, _spec(f"https://huggingface.co/{CACHED_REPO}/resolve/main/{CACHED_PATH}"))
    assert found is not None and found.state == "cached"
    assert found.snapshot_path.endswith(f"snapshots/{COMMIT}/{CACHED_PATH}")
    assert Path(found.blob_path).parent.name == "blobs" and found.size == len(tiny_upscale_model(1))
    assert Path(found.blob_path).name == HubFile(CACHED_REPO, CACHED_PATH, tiny_upscale_model(1)).sha256  # LFS
    # huggingface_hub's own answer for the same file (try_to_load_from_cache reads refs/ and snapshots/)
    from huggingface_hub import try_to_load_from_cache

    assert try_to_load_from_cache(CACHED_REPO, CACHED_PATH, cache_dir=str(staged)) == found.snapshot_path
    by_commit = lookup(staged, _spec(f"https://huggingface.co/{CACHED_REPO}/resolve/{COMMIT}/{CACHED_PATH}"))
    assert by_commit is not None and by_commit.blob_path == found.blob_path


def test_with_several_snapshots_refs_main_picks_the_one_a_main_url_is_served_from(staged, tmp_path):
    """Two snapshots of one repository (RunPod re-cached after main moved): /resolve/main/ follows
    refs/main, /resolve/<commit>/ takes that commit's snapshot whatever refs/main says."""
    repo = tmp_path / "hub/models--comfy-runpod-test--tiny-upscale"
    shutil.copytree(staged / repo.name, repo, symlinks=True)
    older = "1" * 40
    (repo / "blobs/older-blob").write_bytes(tiny_upscale_model(9))
    old_file = repo / "snapshots" / older / CACHED_PATH
    old_file.parent.mkdir(parents=True)
    old_file.symlink_to(os.path.relpath(repo / "blobs/older-blob", old_file.parent))
    main_url = f"https://huggingface.co/{CACHED_REPO}/resolve/main/{CACHED_PATH}"
    pinned_url = f"https://huggingface.co/{CACHED_REPO}/resolve/{older}/{CACHED_PATH}"
    assert f"/snapshots/{COMMIT}/" in lookup(repo.parent, _spec(main_url)).snapshot_path  # type: ignore[union-attr]
    assert lookup(repo.parent, _spec(pinned_url)).blob_path.endswith("/blobs/older-blob")  # type: ignore[union-attr]
    (repo / "refs/main").write_text(older)
    assert lookup(repo.parent, _spec(main_url)).blob_path.endswith("/blobs/older-blob")  # type: ignore[union-attr]


def test_without_refs_the_only_snapshot_serves_the_branch(staged, tmp_path):
    """A repository downloaded by commit has no refs/main: its one snapshot is the one to serve."""
    copy = tmp_path / "hub"
    shutil.copytree(
        staged / "models--comfy-runpod-test--tiny-upscale",
        copy / "models--comfy-runpod-test--tiny-upscale",
        symlinks=True,
    )
    shutil.rmtree(copy / "models--comfy-runpod-test--tiny-upscale/refs")
    found = lookup(copy, _spec(f"https://huggingface.co/{CACHED_REPO}/resolve/main/{CACHED_PATH}"))
    assert found is not None and found.state == "cached" and f"snapshots/{COMMIT}/" in found.snapshot_path
    (copy / "models--comfy-runpod-test--tiny-upscale/snapshots" / ("0" * 40)).mkdir()  # two: which is main?
    found = lookup(copy, _spec(f"https://huggingface.co/{CACHED_REPO}/resolve/main/{CACHED_PATH}"))
    assert found is not None and found.state == "no_revision"


def test_a_file_pinned_to_another_commit_is_served_when_its_sha256_blob_is_cached(staged):
    """RunPod caches the branch; a registry URL pinned to an older commit names the same bytes by sha256."""
    other = "0123456789abcdef0123456789abcdef01234567"
    url = f"https://huggingface.co/{CACHED_REPO}/resolve/{other}/{CACHED_PATH}"
    assert lookup(staged, _spec(url)).state == "no_revision"  # type: ignore[union-attr]
    sha = HubFile(CACHED_REPO, CACHED_PATH, tiny_upscale_model(1)).sha256
    found = lookup(staged, ModelSpec("upscale_models", "x.safetensors", url, sha256=sha))
    assert found is not None and found.state == "cached" and found.blob_path.endswith(f"/blobs/{sha}")
    assert found.size == len(tiny_upscale_model(1))
    # another path in the same snapshot: the sha256 finds it too; a sha256 nobody cached does not
    moved = f"https://huggingface.co/{CACHED_REPO}/resolve/main/old/place.safetensors"
    assert lookup(staged, ModelSpec("upscale_models", "x.safetensors", moved, sha256=sha)).state == "cached"  # type: ignore[union-attr]
    assert lookup(staged, ModelSpec("upscale_models", "x", url, sha256="f" * 64)).state == "no_revision"  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("url", "state"),
    [
        ("https://huggingface.co/comfy-runpod-test/dangling/resolve/main/tiny_dangling_x2.safetensors", "dangling"),
        ("https://huggingface.co/comfy-runpod-test/partial/resolve/main/tiny_partial_x2.safetensors", "incomplete"),
        (f"https://huggingface.co/{CACHED_REPO}/resolve/main/other.safetensors", "not_in_snapshot"),
        (f"https://huggingface.co/{CACHED_REPO}/resolve/v2/{CACHED_PATH}", "no_revision"),
        ("https://huggingface.co/nobody/absent/resolve/main/x.safetensors", "no_repo"),
    ],
)
def test_lookup_names_each_way_a_cached_file_can_be_unusable(staged, url, state):
    found = lookup(staged, _spec(url))
    assert found is not None and found.state == state
    findings = lookup_findings([found], str(staged))
    codes = {"dangling": ["CACHE_MODEL_INCOMPLETE"], "incomplete": ["CACHE_MODEL_INCOMPLETE"], "no_repo": []}
    assert [f.code for f in findings] == codes.get(state, ["CACHE_MODEL_NOT_IN_REPO"])
    if state == "incomplete":
        assert ".incomplete" in (findings[0].path or "") and "partial download" in findings[0].message


def test_links_are_remade_at_each_start_and_a_regular_file_is_never_removed(staged, tmp_path):
    links = tmp_path / "models-cache"
    (links / "vae").mkdir(parents=True)
    (links / "vae/old.safetensors").symlink_to(tmp_path / "gone")
    (links / "vae/keep.txt").write_text("a person's file")
    other = tmp_path / "other"  # a linked folder inside: the link goes, nothing behind it is touched
    other.mkdir()
    (other / "theirs.safetensors").symlink_to(tmp_path / "their-target")
    (links / "loras").symlink_to(other, target_is_directory=True)
    registry = load_registry(_registry_dir(tmp_path / "registry"))
    report = link_cached_models(staged, links, registry)
    assert not os.path.lexists(links / "loras") and os.path.lexists(other / "theirs.safetensors")
    link = links / "upscale_models/tiny_cache_x2.safetensors"
    assert link.is_symlink() and link.read_bytes() == tiny_upscale_model(1)
    assert not os.path.lexists(links / "vae/old.safetensors") and (links / "vae/keep.txt").exists()
    assert report.linked == {("upscale_models", "tiny_cache_x2.safetensors"): str(link)}
    states = {lk.name: lk.state for lk in report.lookups}
    assert states == {
        "tiny_image_x2.safetensors": "no_repo",
        "tiny_cache_x2.safetensors": "cached",
        "tiny_dangling_x2.safetensors": "dangling",
        "tiny_partial_x2.safetensors": "incomplete",
    }
    _clear_links(links)
    assert not link.exists() and (links / "vae/keep.txt").exists()


def test_a_link_that_cannot_be_made_is_a_finding_and_the_start_goes_on(staged, tmp_path):
    (tmp_path / "links").write_text("a file where the links directory should be")
    registry = load_registry(_registry_dir(tmp_path / "registry"))
    report = link_cached_models(staged, tmp_path / "links", registry)
    assert report.linked == {} and len(report.problems) == 1
    findings = cache_findings(report)
    failed = [f for f in findings if f.code == "CACHE_LINK_FAILED"]
    assert len(failed) == 1 and failed[0].path == str(tmp_path / "links") and "writable" in failed[0].fix
    assert "tiny_cache_x2.safetensors" in failed[0].message


def test_a_cache_dir_stat_refuses_is_a_finding_and_the_start_goes_on(tmp_path):
    """is_dir() lets errors other than ENOENT through (EACCES on an unreadable mount): as root here, the
    kernel's ENAMETOOLONG is the real error that takes the same path."""
    cache = tmp_path / ("x" * 300) / "hub"
    registry = load_registry(_registry_dir(tmp_path / "registry"))
    report = link_cached_models(cache, tmp_path / "links", registry)
    assert report.present is False and report.linked == {} and report.lookups == []
    failed = [f for f in cache_findings(report) if f.code == "CACHE_LINK_FAILED"]
    assert len(failed) == 1 and "can't be read" in failed[0].message and "readable" in failed[0].fix


def test_a_registry_name_that_leaves_its_folder_is_never_linked(staged, tmp_path):
    from workflows.registry import Entry, Registry

    url = f"https://huggingface.co/{CACHED_REPO}/resolve/main/{CACHED_PATH}"
    models = (ModelSpec("vae", "../../escaped.safetensors", url), ModelSpec("vae", "/abs.safetensors", url))
    registry = Registry({"x": Entry("x", "x", tmp_path / "x.json", models=models)})
    report = link_cached_models(staged, tmp_path / "links", registry)
    assert report.linked == {} and len(report.problems) == 2
    # a NUL byte (os.stat's ValueError, not an OSError) in a name or a URL is a problem, never a failed start
    nul = (
        ModelSpec("vae", "a\0b.safetensors", url),
        ModelSpec("vae", "c.safetensors", url.replace("main/", "main/%00")),
    )
    report = link_cached_models(
        staged, tmp_path / "links", Registry({"x": Entry("x", "x", tmp_path / "x.json", models=nul)})
    )
    assert report.linked == {} and [p.rsplit(": ", 1)[1] for p in report.problems] == ["embedded null byte"]
    assert [lk.state for lk in report.lookups] == ["cached", "not_in_snapshot"]
    assert not (tmp_path / "escaped.safetensors").exists() and not list(tmp_path.glob("links/**/*.safetensors"))


def test_a_snapshot_link_out_of_its_repository_is_never_served_or_linked(staged, tmp_path):
    """A crafted cache: the snapshot file links to a file outside the repository (here, a secret)."""
    copy = tmp_path / "hub"
    repo = copy / "models--comfy-runpod-test--tiny-upscale"
    shutil.copytree(staged / repo.name, repo, symlinks=True)
    secret = tmp_path / "secret.safetensors"
    secret.write_bytes(b"not a model")
    snapshot = repo / "snapshots" / COMMIT / CACHED_PATH
    snapshot.unlink()
    snapshot.symlink_to(secret)
    found = lookup(copy, _spec(f"https://huggingface.co/{CACHED_REPO}/resolve/main/{CACHED_PATH}"))
    assert found is not None and found.state == "outside" and found.blob_path == ""
    assert [f.code for f in lookup_findings([found], str(copy))] == ["CACHE_MODEL_NOT_IN_REPO"]
    registry = load_registry(_registry_dir(tmp_path / "registry"))
    report = link_cached_models(copy, tmp_path / "links", registry)
    assert report.linked == {} and not list((tmp_path / "links").rglob("*.safetensors"))


def test_a_links_dir_that_is_a_link_is_neither_cleared_through_nor_linked_into(staged, tmp_path):
    elsewhere = tmp_path / "elsewhere"
    (elsewhere / "vae").mkdir(parents=True)
    (elsewhere / "vae/theirs.safetensors").symlink_to(tmp_path / "their-target")
    (tmp_path / "links").symlink_to(elsewhere)
    registry = load_registry(_registry_dir(tmp_path / "registry"))
    report = link_cached_models(staged, tmp_path / "links", registry)
    assert os.path.lexists(elsewhere / "vae/theirs.safetensors")  # another dir's link survives
    assert report.linked == {} and not (elsewhere / "upscale_models").exists()
    assert [f.code for f in cache_findings(report) if f.code == "CACHE_LINK_FAILED"] == ["CACHE_LINK_FAILED"]


def _registry_dir(path: Path) -> Path:
    """The test entries plus smoke_image (the worker's start-up self-check runs it)."""
    path.mkdir(parents=True, exist_ok=True)
    for f in (FIXTURES / "hf_cache_registry").iterdir():
        shutil.copy(f, path / f.name)
    for f in ("smoke_image.yaml", "smoke_image.json"):
        shutil.copy(REPO / "workflows/registry" / f, path / f)
    return path


# --- the real stack -------------------------------------------------------------------------------


@pytest.mark.stack
def test_a_registered_workflow_runs_from_the_cache_and_diagnose_names_every_models_source(staged, tmp_path):
    stack = make_stack(tmp_path / "stack", WORKFLOW_REGISTRY_DIR=str(_registry_dir(tmp_path / "registry")))
    shutil.copytree(staged.parent.parent, stack.volume_dir, symlinks=True)  # the cache under the volume
    stack.volume_dir.chmod(0o755)  # copytree copied pytest's private 0700 onto it: ComfyUI's user must read it
    image_model = stack.comfy_dir / "models/upscale_models/tiny_image_x2.safetensors"
    volume_model = stack.volume_dir / "models/upscale_models/tiny_volume_x2.safetensors"
    for path, seed in ((image_model, 4), (volume_model, 5)):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(tiny_upscale_model(seed))
    make_taesd(COMFY_PYTHON, str(DEFAULT_COMFY_HOME / "ComfyUI"), stack.comfy_dir / "models/vae_approx")
    for part in (stack.comfy_dir / "models/vae_approx").iterdir():
        part.chmod(0o644)  # safetensors' save_file writes 0600: ComfyUI's own user could not read them
    # the same name on the volume, as a x4 model: ComfyUI must take the cache's x2 (the output size tells)
    (volume_model.parent / "tiny_cache_x2.safetensors").write_bytes(tiny_upscale_model(6, scale=4))
    stack.start(wait=180)
    try:
        wait_for_startup_selfcheck(stack)
        health = runsync(stack, {"mode": "test"})["output"]
        assert health["models"]["by_source"] == {"image": 3, "cache": 1, "volume": 1, "missing": 2}
        assert health["models"]["missing"] == [
            "tiny_upscale_broken: upscale_models/tiny_dangling_x2.safetensors",
            "tiny_upscale_broken: upscale_models/tiny_partial_x2.safetensors",
        ]
        assert health["models"]["cache"]["linked"] == 1
        cli = subprocess.run(
            [sys.executable, "client/diagnose.py", "--test", "--url", stack.api_url],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=90,
        )
        assert "models     image 3, cache 1, volume 1, missing 2" in cli.stdout, cli.stdout + cli.stderr

        envelope = runsync(stack, {"workflow": "tiny_upscale"}, timeout=180)
        assert "output" in envelope, envelope
        out = envelope["output"]
        from PIL import Image

        image = Image.open(io.BytesIO(base64.b64decode(out["outputs"][0]["base64"])))
        assert image.size == (128, 96)  # three x2 upscalers ran: image, cache (not the volume's x4), volume

        # a model the cache holds only as an unfinished download: generate's MODEL_MISSING says so
        envelope = runsync(stack, {"workflow": "tiny_upscale_broken"}, timeout=180)
        assert envelope["status"] == "FAILED", envelope
        err = json.loads(envelope["error"])
        pending = [f for f in err["findings"] if f["code"] == "MODEL_MISSING"]
        assert err["error_code"] == "MODEL_MISSING" and len(pending) == 2, err
        assert all("only as an unfinished download of comfy-runpod-test/" in f["message"] for f in pending), err
        assert all("wait for RunPod to finish caching" in f["fix"] for f in pending), err

        envelope = runsync(stack, {"workflow": "tiny_taesd"}, timeout=180)
        assert "output" in envelope, json.loads(envelope["error"])
        taesd = envelope["output"]
        assert (taesd["outputs"][0]["width"], taesd["outputs"][0]["height"]) == (64, 64)

        report = runsync(stack, {"mode": "diagnose"}, timeout=180)["output"]
        served = {m["name"]: m for m in report["model_sources"]["workflows"]["tiny_upscale"]["models"]}
        assert {n: m["source"] for n, m in served.items()} == {
            "tiny_image_x2.safetensors": "image",
            "tiny_cache_x2.safetensors": "cache",
            "tiny_volume_x2.safetensors": "volume",
        }
        assert served["tiny_cache_x2.safetensors"]["repo"] == CACHED_REPO
        broken = report["model_sources"]["workflows"]["tiny_upscale_broken"]
        assert [m["source"] for m in broken["models"]] == ["missing", "missing"]
        incomplete = sorted(f["path"] for f in report["findings"] if f["code"] == "CACHE_MODEL_INCOMPLETE")
        assert len(incomplete) == 2 and "models--comfy-runpod-test--dangling/snapshots/" in incomplete[0]
        assert incomplete[1].endswith(".incomplete")
        loads = report["model_sources"]["first_loads"]
        for name, source in (("tiny_image_x2", "image"), ("tiny_cache_x2", "cache"), ("tiny_volume_x2", "volume")):
            load = loads[f"upscale_models/{name}.safetensors"]
            assert load["source"] == source and load["class_type"] == "UpscaleModelLoader" and load["ms"] > 0
        # the decode moved TAESD to the device through ComfyUI's model management, which logged it
        device = report["model_sources"]["device_loads"]["TAESD"]
        assert device["full"] is True and device["mb"] > 1 and 0 <= device["s"] < 60
        assert loads["vae/taesd"]["class_type"] == "VAELoader" and loads["vae/taesd"]["source"] == "unregistered"
        # ComfyUI itself lists the linked file under the workflow's name, from the worker's links dir
        text = subprocess.run(
            [sys.executable, "client/diagnose.py", "--url", stack.api_url],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=120,
        ).stdout
        assert "models     image 3 · cache 1 · volume 1 · missing 2 · RunPod cache: " in text, text
        loads_line = next(line for line in text.splitlines() if line.startswith("  loads      "))
        assert "upscale_models/tiny_cache_x2.safetensors" in loads_line and "(cache)" in loads_line, text
        listed = [m for m in report["models"]["upscale_models"]["on_disk"] if m["name"] == "tiny_cache_x2.safetensors"]
        assert listed and listed[0]["source"] == "cache" and listed[0]["seen_by_comfyui"]
    finally:
        stack.stop()
