"""Your own workflow end to end: `workflow add` on a file the project never saw, then its generated
validation suite passes against a real stack that loads the new registry; and the official worker's
response shape through the real RunPod local API."""

from __future__ import annotations

import base64
import io
import json
import shutil
from pathlib import Path

import yaml
from PIL import Image

from tests.client.conftest import json_out, run_cli
from tests.conftest import make_stack, runsync
from workflows.registry import REGISTRY_DIR

NEVER_SEEN = {  # a blurred, inverted gradient-free card: no registry entry uses ImageBlur
    "10": {"class_type": "EmptyImage", "inputs": {"width": 160, "height": 96, "batch_size": 1, "color": 3355443}},
    "11": {"class_type": "ImageBlur", "inputs": {"image": ["10", 0], "blur_radius": 4, "sigma": 1.5}},
    "12": {"class_type": "ImageInvert", "inputs": {"image": ["11", 0]}},
    "13": {"class_type": "SaveImage", "inputs": {"images": ["12", 0], "filename_prefix": "card"}},
}


def test_a_never_seen_workflow_goes_from_workflow_add_to_a_passing_suite(stack, tmp_path: Path):
    registry = tmp_path / "registry"
    shutil.copytree(REGISTRY_DIR, registry)
    source = tmp_path / "Blurred Card.json"
    source.write_text(json.dumps(NEVER_SEEN))
    suites = tmp_path / "suites.yaml"

    added = run_cli(
        "workflow",
        "add",
        str(source),
        "--comfy-url",
        stack.comfy_url,
        "--registry",
        str(registry),
        "--suites",
        str(suites),
        "--json",
    )
    assert added.returncode == 0, added.stdout + added.stderr
    result = json_out(added)["result"]
    assert result["workflow"] == "blurred_card" and result["todos"] == [] and result["valid"] is True
    entry = yaml.safe_load((registry / "blurred_card.yaml").read_text())
    assert entry["runs_on_cpu"] is True and entry["outputs"] == [{"node": "13", "kind": "image", "count": 1}]
    assert yaml.safe_load(suites.read_text())["blurred_card"]["cases"] == [{"workflow": "blurred_card"}]
    again = run_cli("workflow", "add", str(source), "--comfy-url", stack.comfy_url, "--registry", str(registry))
    assert again.returncode == 2 and "already registered" in again.stdout + again.stderr

    worker = make_stack(tmp_path / "stack", WORKFLOW_REGISTRY_DIR=str(registry), SELF_CHECK_AT_START="0")
    worker.start(wait=180)
    try:
        validated = run_cli(
            "validate",
            "--suite",
            "blurred_card",
            "--suites",
            str(suites),
            "--registry",
            str(registry),
            "--url",
            worker.api_url,
            "--report-dir",
            str(tmp_path / "report"),
            "--json",
            timeout=300,
        )
    finally:
        worker.stop()
    report = json.loads((tmp_path / "report" / "report.json").read_text())
    assert validated.returncode == 0, [c for c in report["checks"] if c["status"] == "fail"]
    assert report["passed"] is True and [r["status"] for r in report["runs"]] == ["pass", "pass"]


def test_worker_comfyui_response_shape_through_the_real_api(stack):
    envelope = runsync(stack, {"workflow": "smoke_image", "response_format": "worker-comfyui", "width": 64})
    assert envelope["status"] == "COMPLETED", envelope
    output = envelope["output"]
    assert set(output) == {"images"}  # the official worker's keys only
    [image] = output["images"]
    assert image["type"] == "base64" and image["filename"].endswith(".png")
    with Image.open(io.BytesIO(base64.b64decode(image["data"]))) as img:
        assert img.size == (64, 512)


def test_a_comfy_url_that_is_not_comfyui_is_bad_usage_not_a_client_bug(tmp_path: Path):
    """--comfy-url at a web server that is not ComfyUI (404, or JSON of another shape): exit 2, named."""
    import threading
    from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

    site = tmp_path / "site"
    site.mkdir()

    class Quiet(SimpleHTTPRequestHandler):
        def __init__(self, *a, **kw):
            super().__init__(*a, directory=str(site), **kw)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    save = tmp_path / "flow.json"
    save.write_text(json.dumps(NEVER_SEEN))
    try:
        missing = run_cli(
            "workflow", "add", str(save), "--registry", str(tmp_path / "reg"), "--comfy-url", url, "--json"
        )
        (site / "object_info").write_text("[1, 2]")
        foreign = run_cli(
            "workflow", "add", str(save), "--registry", str(tmp_path / "reg"), "--comfy-url", url, "--json"
        )
    finally:
        server.shutdown()
        server.server_close()
    assert missing.returncode == 2 and "HTTP 404" in json_out(missing)["error"]["message"], missing.stdout
    assert foreign.returncode == 2 and "not a map of node definitions" in json_out(foreign)["error"]["message"]
    assert not (tmp_path / "reg" / "flow.yaml").exists()
