"""Pure client pieces: configuration, error parsing, request building, the registry re-check, polling."""

from __future__ import annotations

import base64
import itertools
import json
from pathlib import Path

import pytest

from client.commands.generate import build_request, parse_set
from client.config import CLOUD_API_BASE, load_settings
from client.errors import ConfigError, UsageError
from client.jobflow import poll_intervals, worker_error
from client.ledger import Ledger, request_hash
from client.recheck import inline_findings, recheck
from client.redact import redact, register
from client.runpod_api import RunPodAPI
from tests.conftest import png_base64
from workflows.registry import default_registry, load_registry

KEY = "rp_unit_test_key_abcdef"


# --- configuration -----------------------------------------------------------------------------


def test_cloud_target_is_built_from_endpoint_id_and_key():
    s = load_settings(env={"RUNPOD_API_KEY": KEY, "RUNPOD_ENDPOINT_ID": "abc123"})
    assert s.target.kind == "runpod" and s.target.url == f"{CLOUD_API_BASE}/abc123" == "https://api.runpod.ai/v2/abc123"
    assert s.target.api_key == KEY
    assert (s.timeout_s, s.poll_interval_s, s.retries) == (600.0, 5.0, 3)


def test_flags_override_the_environment():
    env = {"RUNPOD_API_KEY": KEY, "RUNPOD_ENDPOINT_ID": "abc", "TEST_TIMEOUT": "30", "TEST_RETRIES": "7"}
    s = load_settings(url="http://127.0.0.1:8000/", timeout_s=5, env=env)
    assert s.target.kind == "url" and s.target.url == "http://127.0.0.1:8000" and s.timeout_s == 5
    assert s.retries == 7  # not given as a flag: from the environment
    s = load_settings(endpoint_id="other", env=env)
    assert s.target.url.endswith("/v2/other")
    s = load_settings(comfy_url="http://h:8188", env=env)
    assert s.target.kind == "comfy" and s.target.api_key is None


def test_runpod_endpoint_url_means_comfyui_directly_unless_it_is_runpods_own():
    assert load_settings(env={"RUNPOD_ENDPOINT_URL": "http://10.0.0.5:8188"}).target.kind == "comfy"
    s = load_settings(env={"RUNPOD_ENDPOINT_URL": "https://api.runpod.ai/v2/xyz", "RUNPOD_API_KEY": KEY})
    assert s.target.kind == "url" and s.target.api_key == KEY


def test_misconfiguration_is_a_config_error():
    assert load_settings(env={}).target is None
    with pytest.raises(ConfigError, match="RUNPOD_API_KEY"):
        load_settings(env={"RUNPOD_ENDPOINT_ID": "abc"})
    with pytest.raises(ConfigError, match="TEST_TIMEOUT"):
        load_settings(env={"TEST_TIMEOUT": "soon"})
    with pytest.raises(UsageError, match="only one target"):
        load_settings(url="http://a:1", comfy_url="http://b:2", env={})
    with pytest.raises(UsageError):
        load_settings(url="ftp://nope", env={})


def test_the_key_stays_out_of_reprs_and_redacted_text():
    s = load_settings(env={"RUNPOD_API_KEY": KEY, "RUNPOD_ENDPOINT_ID": "abc"})
    assert KEY not in repr(s) and KEY not in repr(s.target)
    api = RunPodAPI(s.target.url, s.target.api_key)
    assert KEY not in repr(api) and KEY not in str(vars(api).get("base_url"))
    register(KEY)
    assert redact(f"Authorization: Bearer {KEY}") == "Authorization: Bearer ***"


# --- the worker's error, however it arrives ------------------------------------------------------


def test_worker_error_from_the_local_api_shape():
    # Seen on the real local dev API: FAILED, `error` = our object as a JSON string, no output.
    err = {"error_code": "BAD_INPUT", "error_message": "unknown key(s)", "fix": "Fix it", "details": {}}
    parsed = worker_error({"status": "FAILED", "error": json.dumps(err)})
    assert parsed["error_code"] == "BAD_INPUT" and parsed["fix"] == "Fix it"


def test_worker_error_from_the_cloud_shape_and_sdk_exceptions():
    out = {"error_code": "TIMEOUT", "error_message": "late", "fix": "raise it", "logs_tail": ["x"]}
    assert worker_error({"status": "FAILED", "error": "late", "output": out})["logs_tail"] == ["x"]
    sdk = {"error_type": "<class 'KeyError'>", "error_message": "'x'", "error_traceback": "Traceback\n  line\nKeyError"}
    parsed = worker_error({"status": "FAILED", "error": json.dumps(sdk)})
    assert parsed["error_code"] == "HANDLER_EXCEPTION" and "KeyError" in parsed["error_message"]
    assert worker_error({"status": "FAILED", "error": "plain text"})["error_message"] == "plain text"


# --- polling -------------------------------------------------------------------------------------


def test_polling_starts_fast_and_backs_off_to_the_configured_interval():
    steps = list(itertools.islice(poll_intervals(5.0), 12))
    assert steps[0] <= 0.2 and steps == sorted(steps) and steps[-1] == 5.0
    assert sum(steps[:5]) < 2.0  # a job done in two seconds is seen within a few polls
    assert max(itertools.islice(poll_intervals(0.5), 20)) == 0.5


# --- request building --------------------------------------------------------------------------


def test_set_parses_node_input_values_as_json_when_possible():
    assert parse_set(["6.text=a red fox", "3.seed=42", "3.cfg=7.5", "9.flag=true", "10:2.list=[1,2]"]) == {
        "6": {"text": "a red fox"},
        "3": {"seed": 42, "cfg": 7.5},
        "9": {"flag": True},
        "10:2": {"list": [1, 2]},
    }
    with pytest.raises(UsageError):
        parse_set(["seed=3"])


def test_build_request_maps_images_and_params(tmp_path: Path):
    registry = default_registry()
    img = tmp_path / "start.png"
    img.write_bytes(base64.b64decode(png_base64()))
    (tmp_path / "set/sub").mkdir(parents=True)
    (tmp_path / "set/a.png").write_bytes(img.read_bytes())
    (tmp_path / "set/sub/b.png").write_bytes(img.read_bytes())
    (tmp_path / "set/notes.txt").write_text("not an image")
    req = build_request(
        registry,
        workflow="smoke_i2v",
        images=[str(img), f"extra.png={img}"],
        images_dir=tmp_path / "set",
        params={"frames": 10, "fps": 5.0, "seed": None},
        sets=["2.crop=disabled"],
        timeout_s=90,
    )
    job = req.job_input
    assert job["workflow"] == "smoke_i2v" and job["frames"] == 10 and "seed" not in job
    assert base64.b64decode(job["image_base64"]) == img.read_bytes()
    assert [i["name"] for i in job["images"]] == ["extra.png", "a.png", "sub/b.png"]  # sub-paths kept
    assert job["overrides"] == {"2": {"crop": "disabled"}} and job["timeout_s"] == 90


def test_build_request_rejects_what_the_worker_would(tmp_path: Path):
    registry = default_registry()
    with pytest.raises(UsageError, match="has no steps parameter"):
        build_request(registry, workflow="smoke_image", params={"steps": 4})
    with pytest.raises(UsageError, match="seed"):
        build_request(registry, workflow="smoke_image", params={"seed": -1})
    ui = tmp_path / "ui.json"  # an editor save goes to the worker as it is (the worker converts it)
    ui.write_text(json.dumps({"nodes": [{"id": 1, "type": "SaveImage"}], "links": [], "version": 0.4}))
    assert build_request(registry, workflow=str(ui)).job_input["workflow"]["nodes"][0]["type"] == "SaveImage"
    with pytest.raises(UsageError, match="need a registered workflow"):
        build_request(registry, workflow=str(ui), params={"seed": 1})


# --- ledger ------------------------------------------------------------------------------------


def test_ledger_claims_a_key_once_per_endpoint(tmp_path: Path):
    ledger = Ledger(tmp_path / "l.sqlite")
    digest = request_hash({"workflow": "smoke_image"})
    row, claimed = ledger.claim("http://a", "k", digest, "smoke_image")
    assert claimed and row.state == "submitting"
    again, claimed_again = ledger.claim("http://a", "k", digest, "smoke_image")
    assert not claimed_again and again.rowid == row.rowid
    assert ledger.claim("http://b", "k", digest, "smoke_image")[1]  # another endpoint: another key space
    ledger.submitted(row.rowid, "job-1")
    ledger.finished(row.rowid, "COMPLETED", output_dir="/x")
    assert ledger.find_job("job-1").status == "COMPLETED"


# --- the re-check against the local registry ---------------------------------------------------


def _worker_answer(registry, known: set[str], available: set[str], lists: dict[str, list[str]]) -> dict:
    checks = {}
    for wid in known:
        nodes = sorted({n["class_type"] for n in registry.entries[wid].workflow().values()})
        checks[wid] = {"workflow": wid, "ok": True, "nodes": nodes, "findings": []}
    return {
        "comfyui_reachable": True,
        "workflow_checks": checks,
        "node_check": {"required_available": sorted(available), "required_missing": []},
        "models": {f: {"on_disk": [], "comfyui_lists": names} for f, names in lists.items()},
        "findings": [],
    }


def test_recheck_catches_a_worker_whose_registry_is_older(tmp_path: Path):
    registry = default_registry()
    smoke_nodes = {n["class_type"] for n in registry.entries["smoke_image"].workflow().values()}
    answer = _worker_answer(registry, {"smoke_image"}, smoke_nodes, {"diffusion_models": [], "vae": ["ae.safetensors"]})
    found = recheck(answer, registry)
    unknown = {f["workflow"] for f in found if f["code"] == "WORKFLOW_UNKNOWN_TO_WORKER"}
    assert unknown == set(registry.entries) - {"smoke_image"}
    assert all(
        f["severity"] == "error" and f["source"] == "client" for f in found if f["code"] == "WORKFLOW_UNKNOWN_TO_WORKER"
    )
    denrisi = [f for f in found if f["workflow"] == "z_image_turbo_denrisi"]
    assert {"NODE_UNVERIFIED", "MODEL_MISSING"} <= {f["code"] for f in denrisi}
    assert not any(f["code"] == "MODEL_MISSING" and "ae.safetensors" in f["message"] for f in denrisi)  # listed
    assert recheck(answer, registry, workflow="smoke_image") == []  # up to date for this one


def test_recheck_flags_a_workflow_that_differs_and_judges_workflow_files(tmp_path: Path):
    registry = default_registry()
    answer = _worker_answer(registry, set(registry.entries), {"EmptyImage", "SaveImage"}, {"checkpoints": []})
    answer["workflow_checks"]["smoke_image"]["nodes"] = ["EmptyImage", "SaveImage"]  # the image's older copy
    found = recheck(answer, registry, workflow="smoke_image")
    assert found[0]["code"] == "WORKFLOW_DIFFERS" and "ImageInvert" in found[0]["message"]
    wf = {
        "1": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "x.safetensors"}},
        "2": {"class_type": "SaveImage", "inputs": {}},
    }
    codes = {f["code"] for f in inline_findings("mine.json", wf, answer)}
    assert codes == {"NODE_UNVERIFIED", "MODEL_MISSING"}


def test_registry_loader_accepts_a_copy_with_an_extra_workflow(tmp_path: Path):
    """The stack test below relies on --registry DIR pointing at such a copy."""
    import shutil

    from workflows.registry import REGISTRY_DIR

    shutil.copytree(REGISTRY_DIR, tmp_path / "reg")
    (tmp_path / "reg/brand_new.json").write_text((REGISTRY_DIR / "smoke_image.json").read_text())
    text = (REGISTRY_DIR / "smoke_image.yaml").read_text().replace("id: smoke_image", "id: brand_new")
    (tmp_path / "reg/brand_new.yaml").write_text(text.replace("workflow: smoke_image.json", "workflow: brand_new.json"))
    assert "brand_new" in load_registry(tmp_path / "reg").entries


# --- output collection, shared with the worker ----------------------------------------------------


def test_output_refs_lists_every_file_by_type_not_by_history_key():
    from workflows.outputs import output_refs, text_items

    history = {
        "9": {"images": [{"filename": "a.png", "subfolder": "job_x", "type": "output"}, {"nofile": 1}, "junk"]},
        "12": {"gifs": [{"filename": "clip.mp4", "type": "temp"}], "text": ["a caption", 7]},
        "13": "not a dict",
    }
    refs = output_refs(history)
    assert [(r.node_id, r.filename, r.subfolder, r.type, r.kind) for r in refs] == [
        ("9", "a.png", "job_x", "output", "image"),
        ("12", "clip.mp4", "", "temp", "video"),  # VideoHelperSuite lists MP4s under 'gifs'
    ]
    assert text_items(history) == [
        {"node_id": "12", "kind": "text", "mime": "text/plain", "text": "a caption", "size_bytes": 9}
    ]
