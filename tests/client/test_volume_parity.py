"""`volume check` over S3 and the worker's `diagnose` on the real stack judge the same volume alike.

The same files are put on a private stack's volume directory (what the worker mounts) and into a
bucket of moto's S3 server (what RunPod serves over its S3 API); the model findings of both — codes,
messages, fixes, with the worker's volume path written as /runpod-volume — must be identical.
"""

from __future__ import annotations

import socket
from pathlib import Path

import boto3
import pytest
from moto.server import ThreadedMotoServer

from client.commands import volume as vol
from client.config import volume_target
from client.s3.adapter import s3_client
from tests.conftest import make_stack, runsync
from workflows.registry import default_registry

pytestmark = pytest.mark.stack

FILES = {  # key on the volume -> size
    "models/checkpoints/sd_xl_base_1.0.safetensors": 1000,  # truncated: MODEL_SIZE_MISMATCH
    "models/loras/ae.safetensors": 10,  # a VAE in the loras folder: MODEL_IN_WRONG_FOLDER
    "ComfyUI/models/unet/z_image_turbo_bf16.safetensors": 20,  # the other layout, an alias folder
    "models/mystery/thing.safetensors": 5,  # a folder the image doesn't scan: MODEL_NOT_SEEN
    "comfyui/models/loras/elsewhere.safetensors": 7,  # a third layout: MODEL_LAYOUT_NOT_SCANNED
}
# qwen_3_4b.safetensors (z_image_turbo) is nowhere: MODEL_MISSING
WORKFLOWS = ("sdxl_basic", "z_image_turbo")  # core nodes only: the CPU stack defines every one


def _model_findings(findings: list[dict]) -> list[dict]:
    models = [f for f in findings if f["code"].startswith("MODEL_")]
    return sorted(models, key=lambda f: (f["code"], f.get("path", ""), f["message"]))


def test_volume_check_and_the_workers_diagnose_agree(tmp_path: Path):
    stack = make_stack(tmp_path / "stack")
    for key, size in FILES.items():
        path = stack.volume_dir / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"\0" * size)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    stack.start(wait=180)
    try:
        url = f"http://127.0.0.1:{port}"
        env = {"RUNPOD_S3_ACCESS_KEY": "user_PARITYKEY1", "RUNPOD_S3_SECRET_KEY": "rps_PARITYSECRET1"}
        raw = boto3.client(
            "s3", endpoint_url=url, aws_access_key_id="a", aws_secret_access_key="b", region_name="us-east-1"
        )
        raw.create_bucket(Bucket="parity")
        for key, size in FILES.items():
            raw.put_object(Bucket="parity", Key=key, Body=b"\0" * size)
        target = volume_target("parity", "EU-RO-1", url, env)
        volume, code = vol.check(s3_client(target), target, default_registry(), WORKFLOWS)
        assert code == 1

        worker = runsync(stack, {"mode": "diagnose"}, timeout=180)["output"]
        mount = str(stack.volume_dir)

        def as_runpod(f: dict) -> dict:
            return {k: v.replace(mount, "/runpod-volume") if isinstance(v, str) else v for k, v in f.items()}

        for wid in WORKFLOWS:
            report = worker["workflow_checks"][wid]
            assert report["missing_nodes"] == [], report
            ours = _model_findings(volume["workflow_checks"][wid]["findings"])
            theirs = _model_findings([as_runpod(f) for f in report["findings"]])
            assert ours == theirs, wid
            assert volume["workflow_checks"][wid]["missing_models"] == report["missing_models"]
        not_seen = [as_runpod(f) for f in worker["findings"] if f["code"] == "MODEL_NOT_SEEN"]
        assert _model_findings(not_seen) == _model_findings(
            [f for f in volume["findings"] if f["code"] == "MODEL_NOT_SEEN"]
        )
        layouts = [as_runpod(f) for f in worker["findings"] if f["code"] == "MODEL_LAYOUT_NOT_SCANNED"]
        assert layouts and _model_findings(layouts) == _model_findings(
            [f for f in volume["findings"] if f["code"] == "MODEL_LAYOUT_NOT_SCANNED"]
        )
        assert layouts[0]["path"] == "/runpod-volume/comfyui/models"
        codes = {f["code"] for wid in WORKFLOWS for f in volume["workflow_checks"][wid]["findings"]}
        assert codes == {"MODEL_MISSING", "MODEL_IN_WRONG_FOLDER", "MODEL_SIZE_MISMATCH"}
        assert not_seen and not_seen[0]["path"] == "/runpod-volume/models/mystery/thing.safetensors"

        # and the client's diagnose names no disagreement between this worker and this volume
        from workflows.volume_index import view_mismatch

        assert view_mismatch(worker, volume, "parity") == []
        (stack.volume_dir / "models/checkpoints/sd_xl_base_1.0.safetensors").unlink()
        worker = runsync(stack, {"mode": "diagnose"}, timeout=180)["output"]
        [finding] = view_mismatch(worker, volume, "parity")
        assert "not on the worker's disk" in finding.message and "sd_xl_base_1.0" in finding.message
    finally:
        stack.stop()
        server.stop()


def test_client_diagnose_with_a_volume_report_names_the_disagreement(stack, tmp_path: Path):
    """`diagnose.py --volume-report`: a model on the volume that the worker doesn't have is named."""
    import json

    from tests.client.conftest import json_out, run_cli

    report = {
        "volume": {"id": "vol-elsewhere", "datacenter": "EU-RO-1", "endpoint": "https://s3api-eu-ro-1.runpod.io/"},
        "models": {
            "loras": [
                {
                    "name": "only_on_the_volume.safetensors",
                    "path": "/runpod-volume/models/loras/only_on_the_volume.safetensors",
                    "size_bytes": 12,
                    "seen_by_comfyui": True,
                }
            ]
        },
    }
    path = tmp_path / "volume.json"
    path.write_text(json.dumps({"schema": "comfy-runpod.client/1", "result": report}))
    proc = run_cli("diagnose", "--url", stack.api_url, "--volume-report", str(path), "--json", timeout=180)
    result = json_out(proc)["result"]
    [mismatch] = [f for f in result["findings"] if f["code"] == "VOLUME_VIEW_MISMATCH"]
    assert mismatch["source"] == "client" and "vol-elsewhere" in mismatch["fix"]
    if result["response"]["volume"]["mounted"]:
        assert "only_on_the_volume.safetensors" in mismatch["message"]
    else:  # the session stack has no volume: the volume's models can't be on the worker at all
        assert "holds 1 model file(s), but the worker has no volume" in mismatch["message"]
    bad = tmp_path / "bad.json"
    bad.write_text("{}")
    proc = run_cli("diagnose", "--url", stack.api_url, "--volume-report", str(bad), "--json")
    assert proc.returncode == 2 and json_out(proc)["error"]["code"] == "VOLUME_REPORT_INVALID"
