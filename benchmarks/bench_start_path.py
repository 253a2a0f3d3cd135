"""The start path, container start → first job served, by phase, on cold starts of the real stack.

Each start is a fresh stack (entrypoint.sh, CPU ComfyUI 0.3.75) with the test packs and, when they can
be had, the real packs RES4LYF and VideoHelperSuite; its registry holds the smoke workflows,
`tiny_upscale` (tests/fixtures/hf_cache_registry: three tiny upscalers served from the image, RunPod's
model cache — staged by huggingface_hub from a local server answering as huggingface.co does — and the
network volume) and `tiny_taesd` (a VAE decode through ComfyUI's model management). The first job
(a `generate` of one workflow) is sent from the moment the entrypoint is spawned and re-sent every
20 ms until the SDK's local API answers; the background self-check is off, so the first prompt
ComfyUI runs is that job's. The worker runs through benchmarks/timed_worker.py, which timestamps
each line it and ComfyUI print. Phases, in seconds from the entrypoint's start:

- entrypoint: spawn → the worker's interpreter runs (bash, the environment);
- worker: → `import handler.worker` done, the model cache linked, ComfyUI's process spawned;
- comfyui_import: → ComfyUI prints "Device:" (Python, torch, comfy's model management imported);
- comfyui_nodes: → ComfyUI prints "Import times for custom nodes:" (its own node modules and every
  pack; each pack's seconds come from that block);
- comfyui_server: → ComfyUI answers /system_stats (the worker's `comfyui_ready` phase);
- first_job: → the job's answer arrived; its `first_loads` (each model's loader node run time, with
  the source it was read from) and `device_loads` (each model's move to the device, from ComfyUI's
  "Requested to load" / "loaded completely" lines) come from diagnose's `model_sources`.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import requests

from benchmarks._common import REPO, reps, stats, write_result
from benchmarks.bench_worker_start import _read_jsonl, _wrapper

WORKFLOWS = ("smoke_image", "smoke_i2v", "tiny_upscale", "tiny_taesd")
POLL_S = 0.02


def _stage(run_dir: Path) -> tuple[Any, str]:
    """A private stack with the bench registry, packs, and the three model sources staged."""
    from tests.conftest import FIXTURES, REAL_PACKS, make_stack
    from tests.hf_standin import HubFile, HubStandIn
    from tests.model_files import make_taesd, stage_cache, tiny_upscale_model
    from tools.localstack import DEFAULT_COMFY_HOME
    from tools.packs import PackUnavailable

    registry = run_dir / "registry"
    registry.mkdir(parents=True)
    for name in ("smoke_image", "smoke_i2v"):
        for ext in ("yaml", "json"):
            shutil.copy(REPO / "workflows/registry" / f"{name}.{ext}", registry)
    for name in ("tiny_upscale", "tiny_taesd"):
        for ext in ("yaml", "json"):
            shutil.copy(FIXTURES / "hf_cache_registry" / f"{name}.{ext}", registry)
    env = {"WORKFLOW_REGISTRY_DIR": str(registry), "SELF_CHECK_AT_START": "0", "GENERATE_TIMEOUT_S": "120"}
    packs = "real"
    try:
        stack = make_stack(run_dir / "stack", packs=REAL_PACKS, **env)
    except PackUnavailable:
        shutil.rmtree(run_dir / "stack", ignore_errors=True)
        stack, packs = make_stack(run_dir / "stack", **env), "test packs only"
    repo, path = "comfy-runpod-test/tiny-upscale", "split_files/upscale_models/tiny_compact_x2.safetensors"
    with HubStandIn([HubFile(repo, path, tiny_upscale_model(1), lfs=False)]) as hub:
        stage_cache(stack.volume_dir / "huggingface-cache/hub", hub.url, repo, [path])
    for rel, seed in (
        (stack.comfy_dir / "models/upscale_models/tiny_image_x2.safetensors", 4),
        (stack.volume_dir / "models/upscale_models/tiny_volume_x2.safetensors", 5),
    ):
        rel.parent.mkdir(parents=True, exist_ok=True)
        rel.write_bytes(tiny_upscale_model(seed))
    make_taesd(
        str(DEFAULT_COMFY_HOME / "venv/bin/python"),
        str(DEFAULT_COMFY_HOME / "ComfyUI"),
        stack.comfy_dir / "models/vae_approx",
    )
    return stack, packs


def _job(workflow: str) -> dict[str, Any]:
    if workflow == "smoke_i2v":
        from tests.conftest import png_base64

        return {"workflow": workflow, "image_base64": png_base64(256, 256)}
    return {"workflow": workflow}


def one_start(workflow: str, timeout: float = 180.0) -> dict[str, Any]:
    run_dir = Path(tempfile.mkdtemp(prefix="comfy-bench-startpath-"))
    stack, packs = _stage(run_dir)
    events_file = run_dir / "worker-events.jsonl"
    stack.env_overrides["BENCH_WORKER_EVENTS"] = str(events_file)
    stack.handler_python = _wrapper(run_dir)
    try:
        spawned = time.time()
        stack.start(wait=0)
        deadline = time.monotonic() + timeout
        answer = None
        while answer is None and time.monotonic() < deadline:
            try:
                r = requests.post(f"{stack.api_url}/runsync", json={"input": _job(workflow)}, timeout=timeout)
                r.raise_for_status()
                answer = r.json()
            except requests.ConnectionError:
                time.sleep(POLL_S)
        served = time.time()
        if answer is None or answer.get("status") != "COMPLETED":
            raise RuntimeError(f"the first {workflow} job failed: {answer}\n{stack.tail()}")
        report = requests.post(
            f"{stack.api_url}/runsync", json={"input": {"mode": "diagnose", "workflow": workflow}}, timeout=120
        ).json()["output"]
    finally:
        stack.stop()
    result = breakdown(_read_jsonl(events_file), report, spawned, served)
    shutil.rmtree(run_dir, ignore_errors=True)
    return {"workflow": workflow, "packs": packs, **result}


def _line_time(events: list[dict[str, Any]], fragment: str) -> float | None:
    return next((e["t"] for e in events if e["event"] == "line" and fragment in e["text"]), None)


def breakdown(events: list[dict[str, Any]], report: dict[str, Any], spawned: float, served: float) -> dict[str, Any]:
    """Phase boundaries (seconds from the entrypoint's start) and the phase durations between them."""
    phases = report["worker"]["phases"]
    imported_wall = next(e["t"] for e in events if e["event"] == "imported")
    origin = imported_wall - phases["handler_imported"]  # the entrypoint's start, on this clock

    def rel(t: float | None) -> float | None:
        return None if t is None else round(t - origin, 3)

    marks = {
        "worker_exec": rel(next((e["t"] for e in events if e["event"] == "exec"), None)),
        "handler_imported": phases.get("handler_imported"),
        "model_cache_linked": phases.get("model_cache_linked"),
        "comfyui_process_started": phases.get("comfyui_process_started"),
        "comfyui_device_line": rel(_line_time(events, "] Device:")),
        "comfyui_nodes_imported": rel(_line_time(events, "Import times for custom nodes:")),
        "comfyui_ready": phases.get("comfyui_ready"),
        "first_job_taken": phases.get("first_job_taken"),
        "first_job_served": rel(served),
    }
    order = [
        ("entrypoint", None, "worker_exec"),
        ("worker", "worker_exec", "comfyui_process_started"),
        ("comfyui_import", "comfyui_process_started", "comfyui_device_line"),
        ("comfyui_nodes", "comfyui_device_line", "comfyui_nodes_imported"),
        ("comfyui_server", "comfyui_nodes_imported", "comfyui_ready"),
        ("first_job", "comfyui_ready", "first_job_served"),
    ]
    durations: dict[str, float | None] = {}
    for name, start, end in order:
        a = 0.0 if start is None else marks[start]
        b = marks[end]
        durations[name] = None if a is None or b is None else round(b - a, 3)
    sources = report.get("model_sources", {})
    return {
        "container_start_to_entrypoint_s": round(origin - spawned, 3),
        "total_s": marks["first_job_served"],
        "marks_s": marks,
        "phases_s": durations,
        "pack_imports_s": {p["name"]: p["seconds"] for p in report.get("custom_nodes", {}).get("packs", [])},
        "model_cache_link_ms": (sources.get("cache") or {}).get("ms"),
        "model_loads": sources.get("first_loads", {}),
        "device_loads": sources.get("device_loads", {}),
    }


def summarise(starts: list[dict[str, Any]]) -> dict[str, Any]:
    names = ["entrypoint", "worker", "comfyui_import", "comfyui_nodes", "comfyui_server", "first_job"]
    figures: dict[str, Any] = {
        "total_s": stats((s["total_s"] for s in starts), 3),
        "phases_s": {n: stats((s["phases_s"][n] for s in starts), 3) for n in names},
    }
    packs = sorted({p for s in starts for p in s["pack_imports_s"]})
    figures["pack_imports_s"] = {p: stats((s["pack_imports_s"].get(p) for s in starts), 3) for p in packs}
    models = sorted({m for s in starts for m in s["model_loads"]})
    figures["model_loads_ms"] = {
        m: {
            **stats(s["model_loads"][m]["ms"] for s in starts if m in s["model_loads"]),
            "source": next(s["model_loads"][m]["source"] for s in starts if m in s["model_loads"]),
        }
        for m in models
    }
    classes = sorted({m for s in starts for m in s["device_loads"]})
    figures["device_loads_s"] = {
        m: stats((s["device_loads"][m]["s"] for s in starts if m in s["device_loads"]), 3) for m in classes
    }
    figures["model_cache_link_ms"] = stats(s["model_cache_link_ms"] for s in starts)
    return figures


def table(result: dict[str, Any]) -> str:
    """The start path as printed by `make bench` (medians)."""
    lines = ["start path, container start → first job served (median seconds from the entrypoint's start):"]
    for wf, f in result["figures"].items():
        phases = ", ".join(f"{n} {v.get('median', '–')}" for n, v in f["phases_s"].items())
        lines.append(f"  {wf}: total {f['total_s'].get('median')} s = {phases}")
        slow = sorted(f["pack_imports_s"].items(), key=lambda kv: -(kv[1].get("median") or 0))[:5]
        if slow:
            lines.append("    packs: " + ", ".join(f"{p} {v['median']} s" for p, v in slow))
        for model, v in f["model_loads_ms"].items():
            lines.append(f"    model {model} ({v['source']}): first load {v['median']} ms")
        for model, v in f["device_loads_s"].items():
            lines.append(f"    {model} moved to the device (ComfyUI's log): {v['median']} s")
    return "\n".join(lines)


def run(n: int | None = None, workflows: tuple[str, ...] = WORKFLOWS) -> dict[str, Any]:
    starts: dict[str, list[dict[str, Any]]] = {w: [] for w in workflows}
    for _ in range(n or reps(2, 2)):
        for wf in workflows:  # interleaved, so load drift hits every workflow alike
            starts[wf].append(one_start(wf))
    return {
        "target": "none (a breakdown, reported, not judged)",
        "method": __doc__.split("\n\n", 1)[1].replace("\n", " "),
        "figures": {wf: summarise(s) for wf, s in starts.items()},
        "met": None,
        "starts": starts,
    }


def main() -> dict[str, Any]:
    result = run()
    write_result("start_path", result)
    print(table(result), flush=True)
    return result


if __name__ == "__main__":
    main()
    sys.exit(0)
