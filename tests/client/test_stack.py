"""The client's CLIs against the real stack: the worker behind the RunPod SDK's local API, and ComfyUI directly."""

from __future__ import annotations

import base64
import json
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import av
import pytest
import requests
from PIL import Image

from client.jobflow import worker_error
from tests.client.conftest import json_out, run_cli
from tests.conftest import png_base64, runsync
from workflows.registry import REGISTRY_DIR

pytestmark = pytest.mark.stack


@pytest.fixture(scope="module", autouse=True)
def stack_left_healthy(stack):
    """After this module's client tests, in whatever order they ran, the stack is still healthy
    (a failure here is reported as an error in the teardown of the module's last test)."""
    yield
    assert requests.get(f"{stack.comfy_url}/system_stats", timeout=5).status_code == 200
    assert runsync(stack, {"mode": "test"})["output"]["ok"] is True


def imported_modules(stderr: str) -> set[str]:
    """Module names from `python -X importtime` output."""
    names = set()
    for line in stderr.splitlines():
        if line.startswith("import time:") and "|" in line:
            names.add(line.rsplit("|", 1)[1].strip())
    return names


def write_png(path: Path, size: tuple[int, int] = (96, 64)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, (200, 40, 40)).save(path)
    return path


# --- health and import weight -------------------------------------------------------------------


def test_health_ping_from_process_start_to_answer(stack):
    proc = run_cli("diagnose", "--test", "--url", stack.api_url, "--json")
    assert proc.returncode == 0, proc.stderr
    result = json_out(proc)["result"]
    assert result["healthy"] is True and result["health"]["comfyui_up"] is True
    assert result["health"]["comfyui_version"] == "0.3.75" and result["round_trip_ms"] > 0
    text = run_cli("diagnose", "--test", "--url", stack.api_url)
    assert text.returncode == 0 and "✓ healthy" in text.stdout and "disk free" in text.stdout


@pytest.mark.parametrize("args", [["--help"], ["--test", "--url", "STACK"]])
def test_the_client_never_imports_runpod_or_the_handler(stack, args):
    import subprocess
    import sys

    from tests.conftest import REPO

    args = [stack.api_url if a == "STACK" else a for a in args]
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "client/diagnose.py", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    modules = imported_modules(proc.stderr)
    assert "client.cli" in modules  # the parse works: we see the client's own modules
    heavy_roots = ("runpod", "handler", "fastapi", "aiohttp", "torch", "matplotlib")
    heavy = {m for m in modules if m.split(".")[0] in heavy_roots}
    assert heavy == set()


def test_failed_jobs_look_like_this_on_the_real_local_api(stack):
    """RunPod's local API keeps only `error` for a failed job: the client reads the worker's object from it."""
    envelope = runsync(stack, {"mode": "test", "verbose": True})
    assert envelope["status"] == "FAILED" and "output" not in envelope and isinstance(envelope["error"], str)
    err = worker_error(envelope)
    assert err["error_code"] == "BAD_INPUT" and err["fix"] and "verbose" in err["error_message"]


# --- diagnose -------------------------------------------------------------------------------------


def test_full_diagnose_groups_findings_and_sets_the_exit_code(stack):
    proc = run_cli("diagnose", "--url", stack.api_url, "--json")
    data = json_out(proc)["result"]
    errors = [f for f in data["findings"] if f["severity"] == "error"]
    assert proc.returncode == (1 if errors else 0)
    assert errors, "the session stack lacks models and packs for the GPU workflows: errors expected"
    assert {"sdxl_basic", "smoke_image", "z_image_turbo_denrisi"} <= set(data["response"]["workflow_checks"])
    assert all(f.get("fix") for f in data["findings"])
    # A file in a folder ComfyUI doesn't scan gives a warning whatever other tests left behind
    # (the volume may or may not exist by now, so the info finding can't be relied on).
    unseen = stack.comfy_dir / "models/Checkpoints/client_unseen.safetensors"
    unseen.parent.mkdir(parents=True, exist_ok=True)
    unseen.write_bytes(b"\0" * 16)
    try:
        text = run_cli("diagnose", "--url", stack.api_url)
    finally:
        unseen.unlink()
    assert text.returncode == proc.returncode
    assert "Errors (" in text.stdout and "fix:" in text.stdout and "MODEL_MISSING" in text.stdout
    assert text.stdout.index("Errors (") < text.stdout.index("Warnings (")  # grouped by severity


def test_diagnose_one_workflow(stack):
    proc = run_cli("diagnose", "--url", stack.api_url, "--workflow", "smoke_i2v", "--json")
    data = json_out(proc)["result"]
    assert list(data["response"]["workflow_checks"]) == ["smoke_i2v"]
    assert data["response"]["workflow_checks"]["smoke_i2v"]["ok"] is True
    assert not [f for f in data["findings"] if f.get("workflow") not in (None, "smoke_i2v")]
    assert proc.returncode == (1 if data["summary"]["error"] else 0)


def test_stale_worker_registry_is_caught_by_the_client(stack, tmp_path: Path):
    registry = tmp_path / "registry"
    shutil.copytree(REGISTRY_DIR, registry)
    (registry / "brand_new.json").write_text((REGISTRY_DIR / "smoke_image.json").read_text())
    entry = (REGISTRY_DIR / "smoke_image.yaml").read_text().replace("id: smoke_image", "id: brand_new")
    (registry / "brand_new.yaml").write_text(entry.replace("smoke_image.json", "brand_new.json"))
    for args in ([], ["--workflow", "brand_new"]):
        proc = run_cli("diagnose", "--url", stack.api_url, "--registry", str(registry), "--json", *args)
        assert proc.returncode == 1, proc.stdout
        found = json_out(proc)["result"]["client_findings"]
        stale = [f for f in found if f["code"] == "WORKFLOW_UNKNOWN_TO_WORKER"]
        assert [f["workflow"] for f in stale] == ["brand_new"] and stale[0]["severity"] == "error"


def test_diagnose_a_workflow_file_through_the_worker(stack, tmp_path: Path):
    wf = json.loads((REGISTRY_DIR / "sdxl_basic.json").read_text())
    path = tmp_path / "mine.json"
    path.write_text(json.dumps(wf))
    proc = run_cli("diagnose", "--url", stack.api_url, "--workflow", str(path), "--json")
    assert proc.returncode == 1
    found = json_out(proc)["result"]["client_findings"]
    assert any(f["code"] == "MODEL_MISSING" and "sd_xl_base_1.0" in f["message"] for f in found)


# --- generate -------------------------------------------------------------------------------------


def test_generate_saves_a_png_and_result_json(stack, tmp_path: Path):
    out = tmp_path / "out"
    proc = run_cli("generate", "--url", stack.api_url, "--workflow", "smoke_image", "--no-open", "--out", str(out))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (directory,) = out.iterdir()
    assert directory.name.split("_", 1)[1].startswith("smoke_image_")
    with Image.open(directory / "smoke_00001_.png") as img:
        assert img.format == "PNG" and img.size == (512, 512)
    result = json.loads((directory / "result.json").read_text())
    assert "base64" not in json.dumps(result) and result["status"] == "COMPLETED"
    assert result["timing"]["worker"]["total_ms"] > 0 and result["timing"]["client"]["wall_s"] > 0
    assert result["response"]["outputs"][0]["saved_as"] == "smoke_00001_.png"
    assert "saved to" in proc.stdout


def test_generate_saves_a_real_mp4_from_an_input_image(stack, tmp_path: Path):
    image = write_png(tmp_path / "start.png")
    proc = run_cli(
        "generate",
        "--url",
        stack.api_url,
        "--workflow",
        "smoke_i2v",
        "--image",
        str(image),
        "--frames",
        "10",
        "--fps",
        "5",
        "--no-open",
        "--json",
        "--out",
        str(tmp_path / "out"),
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    data = json_out(proc)["result"]
    mp4 = Path(data["directory"]) / data["files"][0]
    assert mp4.suffix == ".mp4"
    with av.open(str(mp4)) as container:
        stream = container.streams.video[0]
        frames = sum(1 for _ in container.decode(stream))
        assert frames == 10 and (stream.codec_context.width, stream.codec_context.height) == (256, 256)
    assert data["outputs"][0]["frames"] == 10


def test_generate_with_an_image_directory_and_a_workflow_file(stack, tmp_path: Path):
    write_png(tmp_path / "inputs/sub/start.png", (80, 60))
    write_png(tmp_path / "inputs/other.png")
    wf = {
        "1": {"class_type": "LoadImage", "inputs": {"image": "sub/start.png"}},
        "2": {"class_type": "ImageInvert", "inputs": {"image": ["1", 0]}},
        "3": {"class_type": "SaveImage", "inputs": {"images": ["2", 0], "filename_prefix": "dirtest"}},
    }
    (tmp_path / "dirtest.json").write_text(json.dumps(wf))
    proc = run_cli(
        "generate",
        "--url",
        stack.api_url,
        "--workflow",
        str(tmp_path / "dirtest.json"),
        "--images",
        str(tmp_path / "inputs"),
        "--set",
        "3.filename_prefix=renamed",
        "--no-open",
        "--json",
        "--out",
        str(tmp_path / "out"),
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    data = json_out(proc)["result"]
    assert data["files"][0].startswith("renamed") and data["workflow"] == "dirtest"
    with Image.open(Path(data["directory"]) / data["files"][0]) as img:
        assert img.size == (80, 60)  # the image named sub/start.png was the one loaded


def test_generate_rejected_by_comfyui_exits_1_with_the_code_and_fix(stack, tmp_path: Path):
    proc = run_cli(
        "generate",
        "--url",
        stack.api_url,
        "--workflow",
        "smoke_image",
        "--set",
        "1.width=999999",
        "--no-open",
        "--json",
        "--out",
        str(tmp_path / "out"),
    )
    assert proc.returncode == 1
    err = json_out(proc)["error"]
    assert err["code"] == "VALUE_OUT_OF_RANGE" and "width" in err["fix"]
    assert err["details"]["worker_error"]["findings"][0]["input"] == "width"
    assert not (tmp_path / "out").exists()  # nothing saved for a failed job


def test_local_api_lacks_health_cancel_retry_and_says_so(stack):
    for args in (["health"], ["cancel", "job-1"], ["retry", "job-1"]):
        proc = run_cli("jobs", *args, "--url", stack.api_url, "--json")
        assert proc.returncode == 2, proc.stdout
        err = json_out(proc)["error"]
        assert err["code"] == "NOT_SUPPORTED" and "local dev API" in err["message"] + err["fix"]


# --- validate and bench ---------------------------------------------------------------------------


def test_validate_smoke_passes_and_writes_three_reports(stack, tmp_path: Path):
    reports = tmp_path / "reports"
    proc = run_cli("validate", "--url", stack.api_url, "--suite", "smoke", "--runs", "1", "--report-dir", str(reports))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    report = json.loads((reports / "report.json").read_text())
    assert report["passed"] is True and report["counts"]["fail"] == 0
    names = {c["name"]: c["status"] for c in report["checks"]}
    assert names["health"] == "pass" and names["generate:smoke_i2v"] == "pass"
    assert names["dependencies:smoke_image"] == "pass" and names["timing:cold_start"] == "skip"
    i2v = next(r for r in report["runs"] if r["workflow"] == "smoke_i2v")
    assert i2v["outputs"][0]["frames"] == 12  # decoded with PyAV, as the suite's params ask
    suite = ET.parse(reports / "junit.xml").getroot().find("testsuite")
    assert suite.get("failures") == "0" and int(suite.get("tests")) == len(report["checks"])
    assert (reports / "report.md").read_text().startswith("# Validation `smoke`: PASSED")


def test_validate_fails_on_a_missed_target_and_on_missing_dependencies(stack, tmp_path: Path):
    suites = tmp_path / "suites.yaml"
    suites.write_text(
        "strict:\n  runs: 1\n  targets: {generate_s: 0.000001}\n  cases:\n    - workflow: smoke_image\n"
        "    - workflow: sdxl_basic\n"
    )
    reports = tmp_path / "reports"
    proc = run_cli(
        "validate", "--url", stack.api_url, "--suites", str(suites), "--suite", "strict", "--report-dir", str(reports)
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr
    report = json.loads((reports / "report.json").read_text())
    status = {c["name"]: c["status"] for c in report["checks"]}
    assert report["passed"] is False
    assert status["timing:generate:smoke_image"] == "fail" and status["generate:smoke_image"] == "pass"
    assert status["dependencies:sdxl_basic"] == "fail" and status["generate:sdxl_basic"] == "skip"
    suite = ET.parse(reports / "junit.xml").getroot().find("testsuite")
    failed = [c.get("name") for c in suite.iter("testcase") if c.find("failure") is not None]
    assert failed == ["dependencies:sdxl_basic", "timing:generate:smoke_image"]
    assert "FAILED" in (reports / "report.md").read_text().splitlines()[0]


def test_validate_workflow_runs_the_generations_when_the_models_are_there_and_skips_them_when_not(
    stack, tmp_path: Path
):
    """`validate --workflow`: smoke_image needs no model, so its verified run follows its model-free rows;
    sdxl_basic's checkpoint is not in the stack, so it passes with its generation skipped, naming it."""
    args = ("validate", "--url", stack.api_url, "--workflow")
    proc = run_cli(*args, "smoke_image", "--runs", "1", "--report-dir", str(tmp_path / "smoke"))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    report = json.loads((tmp_path / "smoke" / "report.json").read_text())
    status = {c["name"]: c["status"] for c in report["checks"]}
    assert status["models:smoke_image"] == status["generate:smoke_image"] == "pass" and report["models_missing"] == []
    assert [r["status"] for r in report["runs"]] == ["pass"]  # a real, verified generation
    reports = tmp_path / "sdxl"
    skipped = run_cli(*args, "sdxl_basic", "--report-dir", str(reports))
    assert skipped.returncode == 0, skipped.stdout + skipped.stderr
    report = json.loads((reports / "report.json").read_text())
    status = {c["name"]: c["status"] for c in report["checks"]}
    assert {status[f"{k}:sdxl_basic"] for k in ("nodes", "contract", "graph")} == {"pass"}
    assert status["models:sdxl_basic"] == status["generate:sdxl_basic"] == "skip" and report["runs"] == []
    [ckpt] = [m for m in report["models_missing"] if m.startswith("checkpoints/")]
    generate = next(c for c in report["checks"] if c["name"] == "generate:sdxl_basic")
    assert generate["message"].startswith("skipped: models missing: ") and ckpt in generate["message"]


def test_bench_reports_percentiles_and_cost(stack, tmp_path: Path):
    proc = run_cli(
        "bench",
        "--url",
        stack.api_url,
        "--runs",
        "2",
        "--concurrency",
        "2",
        "--concurrent-runs",
        "2",
        "--gpu",
        "L40S",
        "--out",
        str(tmp_path),
        "--json",
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    result = json.loads((tmp_path / "bench.json").read_text())
    assert result["stats"]["sequential_wall_s"]["n"] == 2 and result["stats"]["concurrent_wall_s"]["n"] == 2
    assert result["cost"]["gpu"] == "L40, L40S, 6000 Ada PRO" and result["cost"]["price_per_s"] == 0.00053
    assert result["cost"]["per_output_usd"] > 0 and "docs.runpod.io" in result["cost"]["price_source"]
    assert "delayTime" in result["cold_start"]["note"]  # the local API reports none
    assert "p95" in (tmp_path / "bench.md").read_text()
    phases = result["cold_start"]["worker_phases_s"]  # where the worker's cold start went
    assert phases["comfyui_process_started"] <= phases["comfyui_ready"] and "rp_test_nodes" in phases["pack_imports_s"]
    assert "worker start phases" in (tmp_path / "bench.md").read_text()


# --- direct to ComfyUI -----------------------------------------------------------------------------


@pytest.fixture
def comfy_files_cleaned(stack):
    """Direct mode cannot delete what it uploads or generates in ComfyUI: tidy up the shared stack."""
    yield
    for folder in ("input", "output", "temp"):
        for path in (stack.comfy_dir / folder).glob("client_*"):
            shutil.rmtree(path) if path.is_dir() else path.unlink()


def test_direct_mode_health_diagnose_and_generate(stack, tmp_path: Path, comfy_files_cleaned):
    health = run_cli("diagnose", "--test", "--comfy-url", stack.comfy_url, "--json")
    assert health.returncode == 0 and json_out(health)["result"]["health"]["comfyui_up"] is True
    diag = run_cli("diagnose", "--workflow", "smoke_image", "--json", env={"RUNPOD_ENDPOINT_URL": stack.comfy_url})
    data = json_out(diag)["result"]
    assert diag.returncode == 0 and data["response"]["workflow_checks"]["smoke_image"]["ok"] is True
    assert any("no disk" in note for note in data["notes"])
    assert any(f["code"] == "NO_DISK_SCAN" for f in data["findings"])
    image = tmp_path / "in.png"
    image.write_bytes(base64.b64decode(png_base64(40, 30)))
    gen = run_cli(
        "generate",
        "--comfy-url",
        stack.comfy_url,
        "--workflow",
        "smoke_i2v",
        "--image",
        str(image),
        "--frames",
        "4",
        "--no-open",
        "--json",
        "--out",
        str(tmp_path / "out"),
    )
    assert gen.returncode == 0, gen.stdout + gen.stderr
    out = json_out(gen)["result"]
    with av.open(str(Path(out["directory"]) / out["files"][0])) as container:
        assert sum(1 for _ in container.decode(video=0)) == 4
    assert list((stack.comfy_dir / "input").glob("client_*"))  # uploaded under the client's own prefix
    assert not list((stack.comfy_dir / "output").glob("job_*"))  # never under the worker's
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"1": {"class_type": "NoSuchNode", "inputs": {}}}))
    checked = run_cli("diagnose", "--comfy-url", stack.comfy_url, "--workflow", str(bad), "--json")
    assert checked.returncode == 1
    assert any(f["code"] == "NODE_MISSING" for f in json_out(checked)["result"]["findings"])


def test_stack_is_still_healthy_after_the_client_tests(stack):
    assert requests.get(f"{stack.comfy_url}/system_stats", timeout=5).status_code == 200
    assert runsync(stack, {"mode": "test"})["output"]["ok"] is True


def test_an_editor_save_runs_through_the_worker_and_directly_alike(stack, tmp_path: Path, comfy_files_cleaned):
    from tests.test_ui_convert import smoke_ui

    ui = tmp_path / "editor_save.json"
    ui.write_text(json.dumps(smoke_ui()))
    sizes = []
    for target in (["--url", stack.api_url], ["--comfy-url", stack.comfy_url]):
        out = tmp_path / target[0].strip("-")
        proc = run_cli("generate", *target, "--workflow", str(ui), "--no-open", "--json", "--out", str(out))
        assert proc.returncode == 0, proc.stdout + proc.stderr
        data = json_out(proc)["result"]
        with Image.open(Path(data["directory"]) / data["files"][0]) as img:
            sizes.append(img.size)
    assert sizes == [(512, 512), (512, 512)]  # converted with the same code (workflows.resolve) both ways


def test_a_save_with_fewer_values_runs_both_ways_when_it_records_the_installed_comfyui(stack, tmp_path: Path):
    """The worker and direct mode tell the converter the installed ComfyUI version (/system_stats): an
    EmptyImage saved with two of its four values by this very version is mapped (defaults for the rest);
    saved by another version it is refused, naming the node, never guessed."""
    from tests.test_ui_convert import smoke_ui

    save = smoke_ui()
    empty = save["nodes"][0]
    empty["widgets_values"] = [512, 512]
    version = stack_comfyui_version(stack)
    for ver, ok in ((version, True), ("0.3.40", False)):
        empty["properties"] = {"cnr_id": "comfy-core", "ver": ver}
        ui = tmp_path / f"save_{ok}.json"
        ui.write_text(json.dumps(save))
        for target in (["--url", stack.api_url], ["--comfy-url", stack.comfy_url]):
            out = tmp_path / f"{target[0].strip('-')}_{ok}"
            proc = run_cli("generate", *target, "--workflow", str(ui), "--no-open", "--json", "--out", str(out))
            if ok:
                assert proc.returncode == 0, proc.stdout + proc.stderr
            else:
                error = json_out(proc)["error"]
                assert error["code"] == "WORKFLOW_UI_FORMAT" and "saved with version 0.3.40" in error["message"], error


def stack_comfyui_version(stack) -> str:
    import requests

    version = requests.get(f"{stack.comfy_url}/system_stats", timeout=10).json()["system"]["comfyui_version"]
    assert isinstance(version, str) and version
    return version


@pytest.mark.parametrize(
    "job_input",
    [
        {"workflow": "smoke_image", "timeout_s": -1},
        {"workflow": "smoke_image", "sead": 1},
        {"workflow": "no_such_workflow"},
        {"workflow": "smoke_i2v"},
        {"workflow": "smoke_image", "overrides": {"1": {"width": 999999}}},
        {"mode": "diagnose", "workflow": "no_such_workflow"},
    ],
)
def test_direct_mode_refuses_exactly_as_the_worker_does(stack, job_input):
    from client.direct import DirectComfy

    worker = worker_error(runsync(stack, job_input))
    direct = DirectComfy(stack.comfy_url)
    try:
        envelope = direct.runsync(job_input, wait_s=30)
    finally:
        direct.close()
    assert envelope["status"] == "FAILED"
    mine = worker_error(envelope)
    for key in ("error_code", "error_message", "fix"):
        assert mine[key] == worker[key], key
