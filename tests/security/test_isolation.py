"""A job that ran code inside ComfyUI can't outlive its job or see the next one, against the real stack.

The test pack's RPSecDaemon and RPSecHook do what code smuggled into ComfyUI does (the red team's pickle
chain, batch7-10): leave a setsid + double-forked daemon, hook ComfyUI's prompt queue. With no class
trusted (TRUSTED_NODES=) they are unvetted: ComfyUI is restarted after their job and everything it
started is killed (handler.isolation, handler.reaper). A registered workflow's classes and ComfyUI's core
cause no restart; UNVETTED_NODES=deny refuses; a foreign listener on COMFY_PORT is COMFY_PORT_IN_USE.
"""

from __future__ import annotations

import http.server
import itertools
import json
import os
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest

from handler import reaper
from tests.conftest import REPO, make_stack, runsync
from tests.security.conftest import NODES
from tools.localstack import LocalStack

pytestmark = [
    pytest.mark.stack,
    pytest.mark.skipif(os.geteuid() != 0, reason="ComfyUI runs as another user only when the worker is root"),
]

_nonce = itertools.count(1)
MAX_PROCS = 3000


def registry_with_a_pack_workflow(run_dir: Path) -> Path:
    """The shipped registry plus `rp_vetted`, a workflow using the test pack's RPSecEnvEcho."""
    registry = run_dir / "registry"
    shutil.copytree(REPO / "workflows" / "registry", registry)
    (registry / "rp_vetted.yaml").write_text(
        "id: rp_vetted\ntitle: a registered workflow using a test pack's class\nworkflow: rp_vetted.json\n"
        "runs_on_cpu: true\n"
    )
    node = {"class_type": "RPSecEnvEcho", "inputs": {"name": "HOME", "mode": "text"}}
    (registry / "rp_vetted.json").write_text(json.dumps({"1": node}))
    (registry / "rp_cache.yaml").write_text(
        "id: rp_cache\ntitle: a registered workflow whose pack caches downloads in HOME\nworkflow: rp_cache.json\n"
        "runs_on_cpu: true\n"
    )
    caches = {str(n): {"class_type": "RPSecCache", "inputs": {"name": name}} for n, name in ((1, "a"), (2, "b"))}
    (registry / "rp_cache.json").write_text(json.dumps(caches))
    for path in [registry, *registry.iterdir()]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    return registry


def stack_with_security_nodes(run_dir: Path, **env: str) -> LocalStack:
    run_dir.mkdir(parents=True, exist_ok=True)
    stack = make_stack(
        run_dir,
        SELF_CHECK_AT_START="0",
        TRUSTED_NODES="",  # not even the test packs: every class outside ComfyUI's core and the registry
        WORKFLOW_REGISTRY_DIR=str(registry_with_a_pack_workflow(run_dir)),
        **env,
    )
    shutil.copytree(NODES / "rp_security_nodes", stack.comfy_dir / "custom_nodes" / "rp_security_nodes")
    return stack


@pytest.fixture(scope="module")
def isolating(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    stack = stack_with_security_nodes(tmp_path_factory.mktemp("isolating"), COMFY_MAX_PROCS=str(MAX_PROCS))
    try:
        stack.start(wait=180)
        yield stack
    finally:
        stack.stop()


def run(stack: LocalStack, workflow: Any, **extra: Any) -> dict[str, Any]:
    """The job's output, or its error (decoded)."""
    envelope = runsync(stack, {"workflow": workflow, **extra}, timeout=180)
    if isinstance(envelope.get("error"), str):
        return json.loads(envelope["error"])
    return envelope["output"]


def texts(out: dict[str, Any]) -> list[str]:
    assert out.get("status") == "success", out
    return [o["text"] for o in out["outputs"] if o["kind"] == "text"]


def core_job(marker: str = "core") -> dict[str, Any]:
    return {
        "1": {"class_type": "EmptyImage", "inputs": {"width": 8, "height": 8, "batch_size": 1, "color": 7}},
        "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": marker}},
    }


def test_core_and_registered_classes_cause_no_restart(isolating):
    before = isolating.wait_state(("ready",), 120)["restart_count"]
    out = run(isolating, core_job())
    assert out["status"] == "success" and "warnings" not in out, out
    out = run(isolating, "rp_vetted")  # a registered workflow's pack class: vetted by registering it
    assert "warnings" not in out and texts(out)
    inline = {"1": {"class_type": "RPSecEnvEcho", "inputs": {"name": "LANG", "mode": "text"}}}
    assert "warnings" not in run(isolating, inline)  # the same class inline: vetted too
    assert isolating.wait_state(("ready",), 120)["restart_count"] == before


def test_a_daemon_a_job_started_dies_with_the_comfyui_restarted_after_it(isolating):
    before = isolating.wait_state(("ready",), 120)["restart_count"]
    workflow = {
        "1": {"class_type": "RPSecDaemon", "inputs": {"nonce": next(_nonce)}},
        "2": {"class_type": "RPTestProbe", "inputs": {"op": "uid", "arg": "", "nonce": next(_nonce)}},
    }
    out = run(isolating, workflow)
    found = texts(out)
    daemon = int(next(t for t in found if t.isdigit()))
    assert f"nproc {MAX_PROCS} {MAX_PROCS}" in found  # RLIMIT_NPROC: a fork bomb is bounded
    (warning,) = out["warnings"]
    assert "RPSecDaemon" in warning and "RPTestProbe" in warning and "TRUSTED_NODES" in warning
    # the restart killed it before the job answered: not alive, not a zombie, reaped
    assert reaper.read_proc(daemon) is None, f"daemon {daemon} outlived its job's ComfyUI"
    health = isolating.wait_state(("ready",), 180)
    assert health["restart_count"] == before + 1
    death = health["last_death"]
    assert death["code"] == "UNVETTED_NODES_RAN" and "RPSecDaemon" in death["message"], death
    processes = runsync(isolating, {"mode": "diagnose"}, timeout=180)["output"]["confinement"]["processes"]
    assert processes["subreaper"] and processes["user_kill"] and processes["max_procs"] == MAX_PROCS
    assert processes["killed_outside_tree"] >= 1
    assert run(isolating, core_job())["status"] == "success"


def test_a_hook_planted_in_comfyui_does_not_see_the_next_jobs_prompt(isolating):
    """batch10's essence: code in ComfyUI wraps the prompt queue; the next tenant's prompt and Comfy.org
    key would reach it. The restart after the planting job leaves the hook nothing to run in."""
    hook = {"1": {"class_type": "RPSecHook", "inputs": {"op": "hook", "nonce": next(_nonce)}}}
    out = run(isolating, hook)
    (planted,) = texts(out)
    assert json.loads(planted)["hooked"] is True  # the hook was really in place in that ComfyUI
    assert "warnings" in out
    isolating.wait_state(("ready",), 180)
    marker = f"TENANT_B_{next(_nonce)}"
    assert run(isolating, core_job(marker), comfy_org_api_key=f"{marker}-key")["status"] == "success"
    dump = {"1": {"class_type": "RPSecHook", "inputs": {"op": "dump", "nonce": next(_nonce)}}}
    (seen,) = texts(run(isolating, dump))
    assert json.loads(seen)["hooked"] is False
    assert marker not in seen


def test_what_an_unvetted_job_changed_in_home_is_gone_and_a_vetted_cache_stays(isolating):
    """A vetted pack's download cache in ComfyUI's HOME is kept across jobs; a job that ran unvetted
    classes planted a file there (what Triton or CUDA would load as compiled code) and rewrote one of the
    cached files: both are gone before ComfyUI starts again, the cache it did not touch stays."""
    isolating.wait_state(("ready",), 120)
    cache = isolating.comfy_dir / "user" / "home" / ".cache" / "rp_pack_cache"
    assert run(isolating, "rp_cache")["status"] == "success"
    assert (cache / "a").is_file() and (cache / "b").is_file()
    before = isolating.wait_state(("ready",), 120)["restart_count"]
    run(isolating, core_job("vetted"))
    assert (cache / "a").is_file() and (cache / "b").is_file()  # a vetted job sweeps nothing there
    planted = isolating.comfy_dir / "user" / "home" / ".cache" / "planted_kernel.so"
    workflow = {
        "1": {"class_type": "RPSecPlant", "inputs": {"op": "plant", "nonce": next(_nonce)}},
        "2": {"class_type": "RPSecPlant", "inputs": {"op": "rewrite", "nonce": next(_nonce)}},
    }
    out = run(isolating, workflow)
    assert sorted(texts(out)) == sorted([str(planted), str(cache / "b")]) and "warnings" in out
    health = isolating.wait_state(("ready",), 180)
    assert health["restart_count"] == before + 1
    assert not planted.exists() and not (cache / "b").exists()
    assert (cache / "a").read_text() == "downloaded once"
    assert "removed 2 files a job with unvetted classes changed" in isolating.log_file.read_text(errors="replace")


@pytest.fixture(scope="module")
def denying(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    stack = stack_with_security_nodes(tmp_path_factory.mktemp("denying"), UNVETTED_NODES="deny")
    try:
        stack.start(wait=180)
        yield stack
    finally:
        stack.stop()


def test_deny_refuses_unvetted_classes_up_front(denying):
    err = run(denying, {"1": {"class_type": "RPSecDaemon", "inputs": {"nonce": next(_nonce)}}})
    assert err["error_code"] == "POLICY_DENIED", err
    assert "RPSecDaemon" in err["error_message"] and "UNVETTED_NODES=deny" in err["error_message"]
    assert "TRUSTED_NODES" in err["fix"]
    assert run(denying, core_job())["status"] == "success"
    assert run(denying, "rp_vetted")["status"] == "success"
    assert denying.wait_state(("ready",), 60)["restart_count"] == 0


class _Impostor(http.server.BaseHTTPRequestHandler):
    """What a leftover process on ComfyUI's port answers: 200 to everything; it records what it was asked."""

    asked: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        self.asked.append(f"GET {self.path}")
        body = b'{"system": {"comfyui_version": "0.3.75"}, "devices": []}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:
        self.asked.append(f"POST {self.path}")
        self.do_GET()

    def log_message(self, *args: Any) -> None:
        pass


def test_a_foreign_listener_on_comfyuis_port_is_a_start_failure_naming_it(denying):
    denying.stop()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", denying.comfy_port), _Impostor)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        denying.start(wait=0)
        health = denying.wait_state(("broken", "ready"), 180)
        assert health["state"] == "broken", health
        cause = health["cause"]
        assert cause["code"] == "COMFY_PORT_IN_USE", cause
        assert f"process {os.getpid()}" in cause["message"] and str(denying.comfy_port) in cause["message"]
        assert "COMFY_PORT" in cause["fix"]
        assert health["restart_count"] == 0  # a start failure, not a restart loop
        err = run(denying, core_job())
        assert err["error_code"] == "COMFY_PORT_IN_USE"
        assert not [a for a in _Impostor.asked if not a.startswith("GET /system_stats")], _Impostor.asked
    finally:
        server.shutdown()
        server.server_close()
