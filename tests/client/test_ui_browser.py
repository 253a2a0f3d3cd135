"""`comfy-runpod ui` in a real browser: the ComfyUI editor served by the launcher, Queue run on the endpoint.

Real parts: headless Chromium (Debian's) drives the editor (comfyui-frontend-package) of a local CPU
ComfyUI that the launcher proxies; the endpoint is the session stack's worker behind the RunPod SDK's
local API (`--url`). Two things RunPod's local API can't do are done with the nearest real part: cancel
(it has no /cancel) runs against the stack's ComfyUI in the client's direct mode (`--comfy-url`), whose
cancel interrupts the running prompt there; RunPod's own /cancel, and progress updates read from
/status, are checked against the replay of its documented API (fake_runpod), which is also where the
API key is sent and must not come back.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
from PIL import Image

from client.ledger import Ledger
from client.ui.local_comfy import EditorComfy
from tests.client import chromium
from tests.client.editor import Editor
from tests.client.fake_runpod import DIAGNOSE_OUTPUT, FakeRunPod, completed, generate_output, running
from tests.conftest import DEFAULT_COMFY_HOME, FIXTURES, REPO, free_port

pytestmark = [
    pytest.mark.stack,
    pytest.mark.skipif(
        chromium.binary() is None, reason="chromium is not installed (`make chromium`; `make test` installs it)"
    ),
]

# A pack only the editor's ComfyUI has: the endpoint lacks its node.
LOCAL_ONLY_PACK = """
class RPLocalOnly:
    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"image": ("IMAGE",)}}

    RETURN_TYPES = ("IMAGE",)
    FUNCTION = "run"
    CATEGORY = "rp_test"

    def run(self, image):
        return (image,)


NODE_CLASS_MAPPINGS = {"RPLocalOnly": RPLocalOnly}
"""
READY = (
    "window.app && window.app.graph && window.comfyAPI && window.comfyAPI.api.api.socket"
    " && window.comfyAPI.api.api.socket.readyState === 1"
)
RUN_BUTTON = '[data-testid="queue-button"] .p-splitbutton-button'
CANCEL_BUTTON = 'button[aria-label="Cancel current run"]'


@pytest.fixture(scope="module")
def editor_comfy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EditorComfy]:
    """The editor's ComfyUI (the project's CPU install with the front-end package), shared by this module."""
    base = tmp_path_factory.mktemp("editor")
    custom = base / "custom_nodes"
    custom.mkdir()
    shutil.copytree(FIXTURES / "custom_nodes/rp_test_nodes", custom / "rp_test_nodes")  # the endpoint has these
    (custom / "rp_local_only").mkdir()
    (custom / "rp_local_only/__init__.py").write_text(LOCAL_ONLY_PACK)
    comfy = EditorComfy(DEFAULT_COMFY_HOME, base, free_port())
    comfy.start()
    try:
        yield comfy
    finally:
        comfy.stop()


@dataclass
class Launched:
    url: str
    proc: subprocess.Popen
    log: Path

    def state(self) -> dict[str, Any]:
        return requests.get(f"{self.url}/comfy-runpod/state", timeout=10).json()

    def wait_job(self, states: tuple[str, ...], timeout: float = 120) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            jobs = self.state()["jobs"]
            if jobs and jobs[-1]["state"] in states:
                return jobs[-1]
            time.sleep(0.1)
        raise AssertionError(f"no job reached {states}: {self.state()}\n{self.log.read_text()[-3000:]}")


def launch(target: list[str], local: EditorComfy, tmp_path: Path, env: dict[str, str] | None = None) -> Launched:
    """`comfy-runpod ui` as a user starts it (its own process), in front of the editor's ComfyUI."""
    port, log = free_port(), tmp_path / f"launcher-{uuid.uuid4().hex[:6]}.log"
    command = [sys.executable, "-m", "client.cli", "ui", *target, "--local-comfy", local.url, "--port", str(port),
               "--poll-interval", "0.2", "-v"]  # fmt: skip
    with log.open("wb") as out:
        proc = subprocess.Popen(
            command, cwd=REPO, stdout=out, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})}
        )
    launched = Launched(f"http://127.0.0.1:{port}", proc, log)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"the launcher exited {proc.returncode}:\n{log.read_text()}"
        try:
            if requests.get(f"{launched.url}/comfy-runpod/state", timeout=2).ok:
                return launched
        except requests.ConnectionError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"the launcher did not answer within 60 s:\n{log.read_text()}")


def stop(launched: Launched) -> None:
    launched.proc.send_signal(signal.SIGINT)  # Ctrl-C: it finishes running jobs and exits
    try:
        launched.proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        launched.proc.kill()
        launched.proc.wait()


@pytest.fixture
def on_stack(stack, editor_comfy: EditorComfy, tmp_path: Path) -> Iterator[Launched]:
    # RUNPOD_ENDPOINT_URL names the worker's RunPod API (asked: it is no ComfyUI), as for the local stack
    launched = launch([], editor_comfy, tmp_path, {"RUNPOD_ENDPOINT_URL": stack.api_url})
    try:
        yield launched
    finally:
        stop(launched)


def explain(launched: Launched) -> str:
    return f"launcher state: {json.dumps(launched.state())[:3000]}\n--- its log\n{launched.log.read_text()[-3000:]}"


def open_editor(editor: Editor, launched: Launched, workflow: dict[str, Any]) -> None:
    # a returning user: no first-visit tour or template browser over the canvas
    requests.post(f"{launched.url}/api/settings/Comfy.TutorialCompleted", json=True, timeout=10).raise_for_status()
    editor.open(launched.url + "/")
    editor.wait(READY, 120, "the editor loaded and its socket connected")
    editor.js(f"window.app.loadApiJson({json.dumps(workflow)}, 'ui-test.json')")
    classes = editor.js("window.app.graph.nodes.map(n => n.type)")
    assert sorted(classes) == sorted(n["class_type"] for n in workflow.values())


def upload_input(launched: Launched, color: tuple[int, int, int]) -> str:
    """An input image uploaded through the launcher, as the editor's LoadImage upload button does."""
    buf = io.BytesIO()
    Image.new("RGB", (256, 160), color).save(buf, "PNG")
    name = f"ui-in-{uuid.uuid4().hex[:8]}.png"
    r = requests.post(f"{launched.url}/upload/image", files={"image": (name, buf.getvalue())}, timeout=30)
    assert r.ok, r.text
    return r.json()["name"]


def test_queue_runs_on_the_endpoint_and_the_output_appears_on_its_node(
    on_stack: Launched, editor_comfy: EditorComfy, client_env: dict[str, str], tmp_path: Path
):
    name = upload_input(on_stack, (200, 30, 30))
    prefix = f"ui_{uuid.uuid4().hex[:6]}"
    workflow = {
        "1": {"class_type": "LoadImage", "inputs": {"image": name}},
        "2": {"class_type": "ImageInvert", "inputs": {"image": ["1", 0]}},
        "3": {"class_type": "SaveImage", "inputs": {"images": ["2", 0], "filename_prefix": prefix}},
    }
    with Editor() as editor:
        open_editor(editor, on_stack, workflow)
        editor.click(RUN_BUTTON)
        shown = editor.wait(
            "(() => { const n = window.app.graph.getNodeById(3); const i = n && n.imgs && n.imgs[0];"
            " return i && i.complete && i.naturalWidth"
            " ? {src: i.src, w: i.naturalWidth, h: i.naturalHeight} : null })()",
            120,
            "the output image on the SaveImage node",
            explain=lambda: explain(on_stack),
        )
        text = editor.wait(
            "(() => { const n = window.app.graph.getNodeById(3); const t = JSON.stringify((n.widgets || [])"
            ".map(w => w.value)); return t.includes('ran on RunPod') ? t : null })()",
            30,
            "the job's timings on the node",
        )
        shot = editor.screenshot()
    (tmp_path / "ui.png").write_bytes(shot)
    if os.environ.get("UI_SCREENSHOT"):  # scripts/ui_screenshot.sh: the README's picture
        Path(os.environ["UI_SCREENSHOT"]).write_bytes(shot)

    job = on_stack.wait_job(("success",))
    assert job["job_id"].startswith("test-")  # the RunPod local API's job id: it ran on the worker
    assert (shown["w"], shown["h"]) == (256, 160) and "subfolder=comfy-runpod" in shown["src"]
    assert "total" in text and "ComfyUI" in text
    ref = job["outputs"]["3"]["images"][0]
    saved = editor_comfy.base_dir / "output" / ref["subfolder"] / ref["filename"]
    with Image.open(saved) as img:  # saved locally, and the worker really inverted the uploaded input
        pixel = img.convert("RGB").getpixel((5, 5))
        assert img.size == (256, 160) and all(abs(a - b) <= 2 for a, b in zip(pixel, (55, 225, 225), strict=True))
    rows = Ledger(Path(client_env["COMFY_RUNPOD_LEDGER"])).recent()
    assert [(r.job_id, r.status) for r in rows] == [(job["job_id"], "COMPLETED")]
    assert Path(rows[0].output_dir or "").is_dir() and (Path(rows[0].output_dir or "") / "result.json").is_file()
    history = requests.get(f"{on_stack.url}/api/history", timeout=10).json()
    assert history[job["prompt_id"]]["status"]["status_str"] == "success"


def test_closing_the_browser_mid_job_loses_nothing(
    on_stack: Launched, editor_comfy: EditorComfy, client_env: dict[str, str]
):
    workflow = {
        "1": {"class_type": "EmptyImage", "inputs": {"width": 64, "height": 48, "batch_size": 1, "color": 255}},
        "2": {"class_type": "RPTestSleep", "inputs": {"image": ["1", 0], "seconds": 3}},
        "3": {
            "class_type": "SaveImage",
            "inputs": {"images": ["2", 0], "filename_prefix": f"ui_{uuid.uuid4().hex[:6]}"},
        },
    }
    with Editor() as editor:
        open_editor(editor, on_stack, workflow)
        editor.js(
            "(window.__seen = [], window.comfyAPI.api.api.addEventListener('execution_start',"
            " () => window.__seen.push(1)), true)"
        )
        editor.click(RUN_BUTTON)
        editor.wait("window.__seen.length", 60, "the job started")
    # the browser is gone; the launcher still follows the job to its end and saves its output
    job = on_stack.wait_job(("success", "error", "cancelled"), 120)
    assert job["state"] == "success", explain(on_stack)
    ref = job["outputs"]["3"]["images"][0]
    assert (editor_comfy.base_dir / "output" / ref["subfolder"] / ref["filename"]).is_file()
    rows = Ledger(Path(client_env["COMFY_RUNPOD_LEDGER"])).recent()
    assert [(r.job_id, r.status) for r in rows] == [(job["job_id"], "COMPLETED")]


def test_an_error_on_the_worker_shows_its_code_message_and_fix_in_the_editor(
    on_stack: Launched, client_env: dict[str, str]
):
    marker = f"boom-{uuid.uuid4().hex[:6]}"
    workflow = {
        "1": {"class_type": "EmptyImage", "inputs": {"width": 64, "height": 48, "batch_size": 1, "color": 0}},
        "2": {"class_type": "RPTestRaise", "inputs": {"image": ["1", 0], "message": marker}},
        "3": {"class_type": "SaveImage", "inputs": {"images": ["2", 0], "filename_prefix": "ui_raise"}},
    }
    with Editor() as editor:
        open_editor(editor, on_stack, workflow)
        editor.click(RUN_BUTTON)
        job = on_stack.wait_job(("error",), 120)
        shown = editor.wait(
            f"(() => {{ const t = document.body.innerText; return t.includes({json.dumps(job['error']['code'])})"
            f" && t.includes({json.dumps(marker)}) ? t : null }})()",
            60,
            "the worker's error in the editor",
            explain=lambda: explain(on_stack),
        )
    assert "Fix:" in shown and job["error"]["fix"].split(".")[0] in shown
    rows = Ledger(Path(client_env["COMFY_RUNPOD_LEDGER"])).recent()
    assert [(r.job_id, r.status, r.error_code) for r in rows] == [(job["job_id"], "FAILED", job["error"]["code"])]


def test_a_node_the_endpoint_lacks_shows_its_finding_in_the_editor_and_nothing_is_sent(
    on_stack: Launched, client_env: dict[str, str]
):
    workflow = {
        "1": {"class_type": "EmptyImage", "inputs": {"width": 64, "height": 64, "batch_size": 1, "color": 0}},
        "2": {"class_type": "RPLocalOnly", "inputs": {"image": ["1", 0]}},
        "3": {"class_type": "SaveImage", "inputs": {"images": ["2", 0], "filename_prefix": "ui_refused"}},
    }
    with Editor() as editor:
        open_editor(editor, on_stack, workflow)
        editor.click(RUN_BUTTON)
        dialog = editor.wait(
            "(() => { const t = document.body.innerText; return t.includes('NODE_MISSING') ? t : null })()",
            60,
            "the endpoint's finding in the editor's error dialog",
        )
    assert "RPLocalOnly" in dialog and "Fix:" in dialog and "on the RunPod endpoint" in dialog
    assert on_stack.state()["jobs"] == []  # nothing was sent
    assert Ledger(Path(client_env["COMFY_RUNPOD_LEDGER"])).recent() == []


def test_cancel_in_the_editor_cancels_the_running_job(
    stack, editor_comfy: EditorComfy, client_env: dict[str, str], tmp_path: Path
):
    launched = launch(["--comfy-url", stack.comfy_url], editor_comfy, tmp_path)
    workflow = {
        "1": {"class_type": "EmptyImage", "inputs": {"width": 64, "height": 64, "batch_size": 1, "color": 0}},
        "2": {"class_type": "RPTestSleep", "inputs": {"image": ["1", 0], "seconds": 600}},
        "3": {"class_type": "SaveImage", "inputs": {"images": ["2", 0], "filename_prefix": "ui_cancel"}},
    }
    try:
        with Editor() as editor:
            open_editor(editor, launched, workflow)
            editor.js(
                "(window.__seen = [], ['execution_start', 'execution_interrupted'].forEach(k =>"
                " window.comfyAPI.api.api.addEventListener(k, e => window.__seen.push(k))), true)"
            )
            editor.click(RUN_BUTTON)
            editor.wait("window.__seen.includes('execution_start')", 60, "the job started in the editor")
            deadline = time.monotonic() + 60  # the prompt is running on the endpoint's ComfyUI
            while not requests.get(f"{stack.comfy_url}/queue", timeout=10).json()["queue_running"]:
                assert time.monotonic() < deadline, "the job never ran on the endpoint"
                time.sleep(0.1)
            editor.click(CANCEL_BUTTON)
            editor.wait("window.__seen.includes('execution_interrupted')", 60, "the editor told of the cancel")
        job = launched.wait_job(("cancelled",), 60)
        assert job["error"]["code"] == "JOB_CANCELLED"
        deadline = time.monotonic() + 30  # interrupted there, not left sleeping for 600 s
        while requests.get(f"{stack.comfy_url}/queue", timeout=10).json()["queue_running"]:
            assert time.monotonic() < deadline, "the endpoint's prompt is still running"
            time.sleep(0.1)
        rows = Ledger(Path(client_env["COMFY_RUNPOD_LEDGER"])).recent()
        assert [(r.job_id, r.status) for r in rows] == [(job["job_id"], "CANCELLED")]
    finally:
        stop(launched)


def test_runpod_progress_outputs_and_timings_reach_the_editors_socket(
    editor_comfy: EditorComfy, client_env: dict[str, str], tmp_path: Path
):
    import websocket

    fake = FakeRunPod().start()
    fake.diagnose_result = completed({**DIAGNOSE_OUTPUT, "node_classes": ["EmptyImage", "SaveImage"]})
    progress = {"node": "2", "value": 3, "max": 10, "nodes_done": 1, "nodes_total": 2}
    fake.script = [{"status": "IN_PROGRESS", "output": progress, "delayTime": 900}] * 3 + [
        completed(generate_output(width=40, height=30), delay_ms=1500)
    ]
    env = {"RUNPOD_API_KEY": fake.api_key, "RUNPOD_ENDPOINT_ID": fake.endpoint_id, "RUNPOD_API_BASE": fake.api_base}
    launched = launch([], editor_comfy, tmp_path, env)
    workflow = {
        "2": {"class_type": "EmptyImage", "inputs": {"width": 40, "height": 30, "batch_size": 1, "color": 0}},
        "3": {"class_type": "SaveImage", "inputs": {"images": ["2", 0], "filename_prefix": "ui_ws"}},
    }
    sock = websocket.create_connection(launched.url.replace("http", "ws") + "/ws?clientId=c2", timeout=60)
    try:
        answer = requests.post(f"{launched.url}/api/prompt", json={"prompt": workflow, "client_id": "c2"}, timeout=30)
        seen: list[tuple[str, Any]] = []
        while not any(kind == "execution_success" for kind, _ in seen):
            frame = sock.recv()
            if isinstance(frame, bytes):
                seen.append(("binary", frame))
            else:
                message = json.loads(frame)
                seen.append((message["type"], message["data"]))
        mine = [(k, d) for k, d in seen if k == "binary" or d.get("prompt_id") == answer.json()["prompt_id"]]
        kinds = [k for k, _ in mine]
        assert kinds.index("execution_start") < kinds.index("progress") < kinds.index("executed")
        shown = next(d for k, d in mine if k == "progress")  # the worker's progress_update, from /status
        assert (shown["node"], shown["value"], shown["max"]) == ("2", 3, 10)
        executed = next(d for k, d in mine if k == "executed")
        ref = executed["output"]["images"][0]
        assert executed["node"] == "3" and ref["subfolder"] == "comfy-runpod" and ref["type"] == "output"
        with Image.open(editor_comfy.base_dir / "output" / ref["subfolder"] / ref["filename"]) as img:
            assert img.size == (40, 30)
        timing = next(d for k, d in mine if k == "execution_success")["timing"]
        assert timing["runpod"]["delayTime_ms"] == 1500 and timing["worker"]["total_ms"] == 305.0
        texts = [d for k, d in mine if k == "binary" and d[:4] == b"\0\0\0\3"]  # PROGRESS_TEXT frames
        assert any(b": IN_PROGRESS after" in t for t in texts)  # where the job is, on its node
        done = next(t for t in texts if b"ran on RunPod" in t)
        assert b"queue 1.50 s" in done and b"ComfyUI 0.28 s" in done
        assert any(k == "status" for k, _ in seen)  # the queue count the editor shows
    finally:
        sock.close()
        stop(launched)
        fake.stop()


def test_cancel_reaches_runpod_and_the_api_key_never_reaches_the_browser(
    editor_comfy: EditorComfy, client_env: dict[str, str], tmp_path: Path
):
    fake = FakeRunPod().start()
    fake.diagnose_result = completed({**DIAGNOSE_OUTPUT, "node_classes": ["EmptyImage", "RPTestSleep", "SaveImage"]})
    fake.script = [running()]  # runs until cancelled
    env = {"RUNPOD_API_KEY": fake.api_key, "RUNPOD_ENDPOINT_ID": fake.endpoint_id, "RUNPOD_API_BASE": fake.api_base}
    launched = launch([], editor_comfy, tmp_path, env)
    workflow = {
        "1": {"class_type": "EmptyImage", "inputs": {"width": 64, "height": 64, "batch_size": 1, "color": 0}},
        "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "ui_rp"}},
    }
    try:
        for origin in ("http://elsewhere.example", "null"):  # another site's page, a sandboxed iframe
            forged = requests.post(
                f"{launched.url}/api/prompt", json={"prompt": workflow}, headers={"Origin": origin}, timeout=30
            )
            assert forged.status_code == 403, origin
        rebound = {"Host": f"evil.example:{launched.url.rsplit(':', 1)[1]}"}  # DNS rebinding: its name, our address
        assert requests.get(f"{launched.url}/comfy-runpod/state", headers=rebound, timeout=10).status_code == 403
        answer = requests.post(f"{launched.url}/api/prompt", json={"prompt": workflow, "client_id": "c1"}, timeout=30)
        assert answer.ok, answer.text
        assert fake.wait_for("POST /run") and fake.wait_for("GET /status", 2)
        queue = requests.get(f"{launched.url}/api/queue", timeout=10).json()
        assert [item[1] for item in queue["queue_running"]] == [answer.json()["prompt_id"]]
        requests.post(f"{launched.url}/api/interrupt", json={"prompt_id": answer.json()["prompt_id"]}, timeout=30)
        assert fake.wait_for("POST /cancel")
        job = launched.wait_job(("cancelled",), 30)
        assert fake.calls("POST /cancel")[0].path == f"/cancel/{job['job_id']}"
        seen = [requests.get(f"{launched.url}{p}", timeout=10).text for p in ("/comfy-runpod/state", "/api/history")]
        assert all(fake.api_key not in text for text in seen) and fake.api_key not in launched.log.read_text()

        missing = {"1": {"class_type": "LoadImage", "inputs": {"image": "never-uploaded.png"}}, "2": workflow["2"]}
        missing["2"] = {**workflow["2"], "inputs": {"images": ["1", 0], "filename_prefix": "ui_rp"}}
        refused = requests.post(f"{launched.url}/api/prompt", json={"prompt": missing}, timeout=30)
        assert refused.status_code == 400 and refused.json()["error"]["type"] == "INPUT_UNREADABLE"

        switched = requests.post(f"{launched.url}/comfy-runpod/mode", json={"mode": "local"}, timeout=10)
        assert switched.json()["mode"] == "local"
        assert requests.get(f"{launched.url}/comfy-runpod/mode", timeout=10).json() == {"mode": "local"}
        local = requests.post(f"{launched.url}/api/prompt", json={"prompt": workflow}, timeout=30).json()
        deadline = time.monotonic() + 60  # it ran on the local ComfyUI, and RunPod saw no second job
        while local["prompt_id"] not in requests.get(f"{editor_comfy.url}/history", timeout=10).json():
            assert time.monotonic() < deadline, "the prompt did not run on the local ComfyUI"
            time.sleep(0.1)
        assert fake.count("POST /run") == 1 and len(launched.state()["jobs"]) == 1
    finally:
        stop(launched)
        fake.stop()
