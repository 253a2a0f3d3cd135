"""`volume check | ls | push` against a real S3-compatible server (moto's, on 127.0.0.1) started here.

RunPod's cloud can't be reached from the tests; moto speaks the same S3 protocol boto3 speaks to
RunPod's endpoints (path-style, ListObjectsV2, multipart). Each test uses its own bucket (= volume).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto.server import ThreadedMotoServer

from client.commands import volume as vol
from client.config import volume_target
from client.s3 import transfer
from client.s3.adapter import s3_client
from tests.client.conftest import json_out, run_cli
from workflows.registry import REGISTRY_DIR, load_registry

ACCESS = "user_TESTACCESSKEY123"
SECRET = "rps_TESTSECRETKEY456789"
MiB = 1024**2


@pytest.fixture(scope="module")
def s3_url() -> Iterator[str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


@pytest.fixture
def bucket(s3_url: str) -> str:
    name = f"vol{uuid.uuid4().hex[:12]}"
    raw(s3_url).create_bucket(Bucket=name)
    return name


def raw(url: str) -> Any:
    return boto3.client(
        "s3", endpoint_url=url, aws_access_key_id=ACCESS, aws_secret_access_key=SECRET, region_name="us-east-1"
    )


def env() -> dict[str, str]:
    return {"RUNPOD_S3_ACCESS_KEY": ACCESS, "RUNPOD_S3_SECRET_KEY": SECRET}


def target_args(url: str, bucket: str) -> list[str]:
    return ["--volume-id", bucket, "--datacenter", "EU-RO-1", "--endpoint-url", url]


def blob(size: int, seed: str) -> bytes:
    out = bytearray()
    block = hashlib.sha256(seed.encode()).digest()
    while len(out) < size:
        block = hashlib.sha256(block).digest()
        out += block * 128
    return bytes(out[:size])


MODELS = {  # name -> (folder, size)
    "ckpt.safetensors": ("checkpoints", 12 * MiB + 123),
    "style.safetensors": ("loras", 1500),
    "vae.safetensors": ("vae", 2500),
    "extra.pth": ("upscale_models", 300),
}


@pytest.fixture
def models(tmp_path: Path) -> dict[str, Path]:
    """The local model files, their registry entries (sizes and sha256) in tmp_path/registry."""
    local = tmp_path / "local"
    local.mkdir()
    files = {}
    for name, (_folder, size) in MODELS.items():
        (local / name).write_bytes(blob(size, name))
        files[name] = local / name
    reg = tmp_path / "registry"
    reg.mkdir()
    workflow = {
        "1": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "ckpt.safetensors"}},
        "2": {
            "class_type": "LoraLoader",
            "inputs": {"lora_name": "style.safetensors", "model": ["1", 0], "clip": ["1", 1]},
        },
        "3": {"class_type": "VAELoader", "inputs": {"vae_name": "vae.safetensors"}},
        "4": {"class_type": "SaveImage", "inputs": {"images": ["3", 0]}},
    }
    (reg / "full.json").write_text(json.dumps(workflow))
    lines = ["id: full", "title: full", "workflow: full.json", "models:"]
    node_of = {"ckpt.safetensors": ("1", "ckpt_name"), "style.safetensors": ("2", "lora_name")}
    node_of["vae.safetensors"] = ("3", "vae_name")
    for name, (folder, size) in MODELS.items():
        sha = hashlib.sha256(files[name].read_bytes()).hexdigest()
        lines += [f"  - folder: {folder}", f"    name: {name}", f"    size_bytes: {size}", f"    sha256: {sha}"]
        lines += [f"    url: https://example.com/{name}"]
        if name in node_of:
            lines += [f'    node: "{node_of[name][0]}"', f"    input: {node_of[name][1]}"]
    (reg / "full.yaml").write_text("\n".join(lines) + "\n")
    (reg / "vae_only.json").write_text(json.dumps({"3": workflow["3"], "4": workflow["4"]}))
    (reg / "vae_only.yaml").write_text(
        "id: vae_only\ntitle: vae\nworkflow: vae_only.json\nmodels:\n"
        f"  - {{folder: vae, name: vae.safetensors, size_bytes: {MODELS['vae.safetensors'][1]}, node: '3', "
        "input: vae_name}\n"
    )
    assert not load_registry(reg).problems
    return files


def secrets_absent(*texts: str) -> None:
    for text in texts:
        assert ACCESS not in text and SECRET not in text


def volume_cli(*args: str, env_extra: dict[str, str] | None = None) -> Any:
    proc = run_cli("volume", *args, env={**env(), **(env_extra or {})})
    secrets_absent(proc.stdout, proc.stderr)
    return proc


# ---------------------------------------------------------------------------------------------
# check
# ---------------------------------------------------------------------------------------------


def test_check_names_every_finding_kind_with_the_workers_codes(s3_url, bucket, models, tmp_path):
    s3 = raw(s3_url)
    s3.put_object(Bucket=bucket, Key="models/checkpoints/ckpt.safetensors", Body=b"truncated")  # size mismatch
    s3.put_object(Bucket=bucket, Key="models/checkpoints/style.safetensors", Body=b"x")  # lora in the wrong folder
    s3.put_object(Bucket=bucket, Key="workspace/upscale_models/extra.pth", Body=b"x" * 300)  # not scanned
    s3.put_object(Bucket=bucket, Key="models/", Body=b"")  # a directory marker, as RunPod lists them
    # vae.safetensors: missing
    reg = str(tmp_path / "registry")
    proc = volume_cli("check", *target_args(s3_url, bucket), "--registry", reg, "--json", "-vv")
    assert proc.returncode == 1, proc.stderr
    result = json_out(proc)["result"]
    by_code = {f["code"]: f for f in result["findings"]}
    assert set(by_code) == {"MODEL_MISSING", "MODEL_IN_WRONG_FOLDER", "MODEL_SIZE_MISMATCH", "MODEL_NOT_SEEN"}
    size = by_code["MODEL_SIZE_MISMATCH"]
    assert size["path"] == "/runpod-volume/models/checkpoints/ckpt.safetensors"
    assert "is 9 bytes; the registry expects 12,583,035" in size["message"]
    assert "https://example.com/ckpt.safetensors" in size["fix"]
    wrong = next(f for f in result["findings"] if f["code"] == "MODEL_IN_WRONG_FOLDER" and f.get("node_id") == "2")
    assert "in the 'checkpoints' folder" in wrong["message"]
    assert "Put vae.safetensors into models/vae/" in by_code["MODEL_MISSING"]["fix"]
    # the unscanned copy of the unreferenced model: not seen, and named as in the wrong place
    assert by_code["MODEL_NOT_SEEN"]["path"] == "/runpod-volume/workspace/upscale_models/extra.pth"
    assert any(f["code"] == "MODEL_IN_WRONG_FOLDER" and "does not scan" in f["message"] for f in result["findings"])
    assert result["layouts"] == ["models"]
    assert set(result["workflow_checks"]) == {"full", "vae_only"}
    # the text output carries the same findings, and the exit code is diagnose's
    text = volume_cli("check", *target_args(s3_url, bucket), "--registry", reg)
    assert text.returncode == 1
    for code in by_code:
        assert code in text.stdout
    assert "PROBLEMS" in text.stdout


def test_check_judges_the_workflows_asked_for_in_either_layout(s3_url, bucket, models, tmp_path):
    s3 = raw(s3_url)
    s3.put_object(Bucket=bucket, Key="ComfyUI/models/vae/vae.safetensors", Body=models["vae.safetensors"].read_bytes())
    reg = str(tmp_path / "registry")
    ok = volume_cli("check", *target_args(s3_url, bucket), "--registry", reg, "--workflow", "vae_only", "--json")
    assert ok.returncode == 0, ok.stdout
    result = json_out(ok)["result"]
    assert result["ok"] and list(result["workflow_checks"]) == ["vae_only"] and result["layouts"] == ["ComfyUI/models"]
    both = volume_cli(
        "check", *target_args(s3_url, bucket), "--registry", reg, "--workflow", "vae_only", "--workflow", "full"
    )
    assert both.returncode == 1 and "MODEL_MISSING" in both.stdout
    unknown = volume_cli("check", *target_args(s3_url, bucket), "--registry", reg, "--workflow", "nope", "--json")
    assert unknown.returncode == 2 and json_out(unknown)["error"]["code"] == "WORKFLOW_NOT_FOUND"


def test_check_without_keys_or_volume_is_unusable(s3_url, bucket, tmp_path):
    proc = run_cli("volume", "check", *target_args(s3_url, bucket), "--json")
    assert proc.returncode == 2 and json_out(proc)["error"]["code"] == "VOLUME_NO_KEYS"
    missing = volume_cli("check", *target_args(s3_url, "no-such-volume"), "--json")
    assert missing.returncode == 2 and json_out(missing)["error"]["code"] == "VOLUME_NOT_FOUND"
    bad = volume_cli("check", "--volume-id", bucket, "--datacenter", "nowhere", "--json")
    assert bad.returncode == 2 and json_out(bad)["error"]["code"] == "VOLUME_ID_INVALID"


# ---------------------------------------------------------------------------------------------
# push and ls
# ---------------------------------------------------------------------------------------------


def push_args(url: str, bucket: str, tmp_path: Path, *extra: str) -> list[str]:
    return [
        "push",
        *target_args(url, bucket),
        "--registry",
        str(tmp_path / "registry"),
        "--hash-cache",
        str(tmp_path / "hashes.json"),
        "--part-size-mb",
        "5",
        *extra,
    ]


def test_push_uploads_what_is_missing_and_nothing_twice(s3_url, bucket, models, tmp_path):
    local = str(tmp_path / "local")
    dry = volume_cli(*push_args(s3_url, bucket, tmp_path, local, "--dry-run", "--json"))
    assert dry.returncode == 0, dry.stdout
    plan = json_out(dry)["result"]
    assert plan["summary"]["upload"] == 4 and plan["summary"]["upload_bytes"] == sum(s for _, s in MODELS.values())
    assert {i["key"] for i in plan["items"]} == {f"models/{folder}/{name}" for name, (folder, _) in MODELS.items()}
    assert all(i["verified"] == "sha256+size" for i in plan["items"])
    assert "Contents" not in raw(s3_url).list_objects_v2(Bucket=bucket)  # a dry run moves nothing

    proc = volume_cli(*push_args(s3_url, bucket, tmp_path, local, "--json", "-vv"))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    result = json_out(proc)["result"]
    assert all(i["action"] == "uploaded" for i in result["items"])
    ckpt = next(i for i in result["items"] if i["key"].endswith("ckpt.safetensors"))
    assert ckpt["parts"] == {"total": 3, "resumed": 0, "uploaded": 3}  # multipart: 12 MiB in 5 MiB parts
    s3 = raw(s3_url)
    for name, (folder, _) in MODELS.items():
        body = s3.get_object(Bucket=bucket, Key=f"models/{folder}/{name}")["Body"].read()
        assert body == models[name].read_bytes(), name

    again = volume_cli(*push_args(s3_url, bucket, tmp_path, local, "--json"))
    summary = json_out(again)["result"]["summary"]
    assert summary["upload"] == 0 and summary["present"] == 4

    check = volume_cli("check", *target_args(s3_url, bucket), "--registry", str(tmp_path / "registry"), "--json")
    assert check.returncode == 0, check.stdout

    listing = volume_cli("ls", *target_args(s3_url, bucket))
    assert listing.returncode == 0
    assert "checkpoints/" in listing.stdout and "ckpt.safetensors  12.6 MB" in listing.stdout
    ls_json = json_out(volume_cli("ls", *target_args(s3_url, bucket), "--prefix", "models/", "--json"))["result"]
    assert ls_json["files"] == 4 and ls_json["top_level"]["checkpoints/"] == MODELS["ckpt.safetensors"][1]


def test_push_refuses_a_file_that_does_not_match_the_registry(s3_url, bucket, models, tmp_path):
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "style.safetensors").write_bytes(b"y" * MODELS["style.safetensors"][1])  # right size, wrong bytes
    (bad / "vae.safetensors").write_bytes(b"short")
    (bad / "mine.safetensors").write_bytes(b"z" * 10)
    proc = volume_cli(*push_args(s3_url, bucket, tmp_path, str(bad), "--json"))
    assert proc.returncode == 1
    items = {Path(i["local"]).name: i for i in json_out(proc)["result"]["items"]}
    assert items["style.safetensors"]["code"] == "PUSH_HASH_MISMATCH"
    assert "https://example.com/style.safetensors" in items["style.safetensors"]["fix"]
    assert items["vae.safetensors"]["code"] == "PUSH_SIZE_MISMATCH"
    assert items["mine.safetensors"]["code"] == "PUSH_NOT_IN_REGISTRY"
    assert all(i["action"] == "refused" for i in items.values())
    assert "Contents" not in raw(s3_url).list_objects_v2(Bucket=bucket)
    text = volume_cli(*push_args(s3_url, bucket, tmp_path, str(bad)))
    assert "PUSH_HASH_MISMATCH" in text.stdout and "fix:" in text.stdout
    # an unregistered file goes up unchecked only where it is told to
    told = volume_cli(*push_args(s3_url, bucket, tmp_path, str(bad / "mine.safetensors"), "--folder", "loras"))
    assert told.returncode == 0
    assert raw(s3_url).head_object(Bucket=bucket, Key="models/loras/mine.safetensors")["ContentLength"] == 10


def test_a_multipart_file_that_does_not_match_the_registry_is_aborted_and_never_visible(
    s3_url, bucket, models, tmp_path
):
    """Parts go up while the file is hashed; a sha256 mismatch aborts the upload: no object, no parts left."""
    bad = tmp_path / "bad"
    bad.mkdir()
    size = MODELS["ckpt.safetensors"][1]  # 3 parts of 5 MiB
    (bad / "ckpt.safetensors").write_bytes(blob(size, "another version"))
    shutil.copy(models["vae.safetensors"], bad / "vae.safetensors")
    proc = volume_cli(*push_args(s3_url, bucket, tmp_path, str(bad), "--json"))
    assert proc.returncode == 1, proc.stdout + proc.stderr
    items = {Path(i["local"]).name: i for i in json_out(proc)["result"]["items"]}
    ckpt = items["ckpt.safetensors"]
    assert (ckpt["action"], ckpt["code"]) == ("refused", "PUSH_HASH_MISMATCH")
    assert "https://example.com/ckpt.safetensors" in ckpt["fix"]
    assert items["vae.safetensors"]["action"] == "uploaded"  # the other file is not held back
    s3 = raw(s3_url)
    assert [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]] == ["models/vae/vae.safetensors"]
    assert "Uploads" not in s3.list_multipart_uploads(Bucket=bucket)


class HeldHashes(transfer.HashCache):
    """The hash ends only once every part was uploaded (the check as slow as can be)."""

    def __init__(self) -> None:
        super().__init__(None)
        self.release = threading.Event()

    def sha256(self, file: Path) -> str:
        assert self.release.wait(60), "the parts were not uploaded while the file was being hashed"
        return super().sha256(file)


def test_a_mismatch_found_after_every_part_was_sent_aborts_the_upload(s3_url, bucket, tmp_path):
    """The check holds the completion: even with all parts on the server, a wrong file is never completed."""
    size = 2 * 5 * MiB + 99
    local = tmp_path / "late.safetensors"
    local.write_bytes(blob(size, "late"))
    sent: list[int] = []

    hashes = HeldHashes()

    def on_part(item: transfer.PushItem, number: int) -> None:
        sent.append(number)
        if len(sent) == 3:
            hashes.release.set()

    key = "models/loras/late.safetensors"
    item = transfer.PushItem(str(local), key, size, "upload", expect_sha256="0" * 64, url="https://example.com/late")
    target = volume_target(bucket, "EU-RO-1", s3_url, env())
    transfer.upload(s3_client(target), bucket, [item], part_size=5 * MiB, workers=3, on_part=on_part, hashes=hashes)
    assert sorted(sent) == [1, 2, 3]
    assert (item.action, item.code, item.verified) == ("refused", "PUSH_HASH_MISMATCH", "")
    assert "https://example.com/late" in str(item.fix)
    s3 = raw(s3_url)
    assert "Contents" not in s3.list_objects_v2(Bucket=bucket)
    assert "Uploads" not in s3.list_multipart_uploads(Bucket=bucket)  # aborted: its parts are gone too


def test_multipart_uploads_carry_a_crc32_per_part_as_boto3s_upload_file_does(s3_url, bucket, tmp_path):
    """CreateMultipartUpload with ChecksumAlgorithm=CRC32 and each part's CRC32 in Complete, unless the
    client computes checksums only when required (AWS_REQUEST_CHECKSUM_CALCULATION=when_required)."""
    from botocore.config import Config

    size = 5 * MiB + 1
    local = tmp_path / "crc.safetensors"
    local.write_bytes(blob(size, "crc"))
    target = volume_target(bucket, "EU-RO-1", s3_url, env())
    s3 = raw(s3_url)
    item = transfer.PushItem(str(local), "models/loras/crc.safetensors", size, "upload")
    transfer.upload(s3_client(target), bucket, [item], part_size=5 * MiB)
    head = s3.head_object(Bucket=bucket, Key=item.key, ChecksumMode="ENABLED")
    assert head["ContentLength"] == size and head.get("ChecksumCRC32"), head
    plain = boto3.client(
        "s3",
        endpoint_url=s3_url,
        aws_access_key_id=ACCESS,
        aws_secret_access_key=SECRET,
        region_name="us-east-1",
        config=Config(request_checksum_calculation="when_required"),
    )
    other = transfer.PushItem(str(local), "models/loras/plain.safetensors", size, "upload")
    transfer.upload(plain, bucket, [other], part_size=5 * MiB)
    assert s3.get_object(Bucket=bucket, Key=other.key)["Body"].read() == local.read_bytes()
    assert not s3.head_object(Bucket=bucket, Key=other.key, ChecksumMode="ENABLED").get("ChecksumCRC32")


def test_push_never_overwrites_without_replace(s3_url, bucket, models, tmp_path):
    s3 = raw(s3_url)
    s3.put_object(Bucket=bucket, Key="models/vae/vae.safetensors", Body=b"truncated")
    args = push_args(s3_url, bucket, tmp_path, str(models["vae.safetensors"]), "--json")
    refused = json_out(volume_cli(*args))["result"]["items"][0]
    assert refused["code"] == "PUSH_WOULD_REPLACE"
    assert s3.head_object(Bucket=bucket, Key="models/vae/vae.safetensors")["ContentLength"] == 9
    replaced = volume_cli(*args, "--replace")
    assert replaced.returncode == 0
    assert s3.head_object(Bucket=bucket, Key="models/vae/vae.safetensors")["ContentLength"] == 2500
    # an unregistered file (--folder) never overwrites either
    s3.put_object(Bucket=bucket, Key="models/loras/mine.safetensors", Body=b"old")
    (tmp_path / "mine.safetensors").write_bytes(b"new bytes")
    mine = push_args(s3_url, bucket, tmp_path, str(tmp_path / "mine.safetensors"), "--folder", "loras", "--json")
    assert json_out(volume_cli(*mine))["result"]["items"][0]["code"] == "PUSH_WOULD_REPLACE"
    assert s3.get_object(Bucket=bucket, Key="models/loras/mine.safetensors")["Body"].read() == b"old"


def test_an_interrupted_multipart_upload_resumes_without_sending_parts_twice(s3_url, bucket, tmp_path):
    size = 6 * 5 * MiB + 77  # 7 parts of 5 MiB
    local = tmp_path / "big.safetensors"
    local.write_bytes(blob(size, "big"))
    reg = tmp_path / "registry"
    reg.mkdir()
    (reg / "big.json").write_text(
        json.dumps({"1": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "big.safetensors"}}})
    )
    sha = hashlib.sha256(local.read_bytes()).hexdigest()
    (reg / "big.yaml").write_text(
        "id: big\ntitle: big\nworkflow: big.json\nmodels:\n"
        f"  - {{folder: checkpoints, name: big.safetensors, size_bytes: {size}, sha256: {sha}}}\n"
    )
    registry = load_registry(reg)
    target = volume_target(bucket, "EU-RO-1", s3_url, env())
    client = s3_client(target, workers=1)
    sent: list[int] = []

    def stop_after_three(item: transfer.PushItem, number: int) -> None:
        sent.append(number)
        if len(sent) == 3:
            raise KeyboardInterrupt  # what Ctrl-C raises in the main thread

    with pytest.raises(KeyboardInterrupt):
        vol.push(client, target, registry, [str(local)], part_size=5 * MiB, workers=1, on_part=stop_after_three)
    s3 = raw(s3_url)
    assert "Contents" not in s3.list_objects_v2(Bucket=bucket)
    uploads = s3.list_multipart_uploads(Bucket=bucket)["Uploads"]
    assert len(uploads) == 1 and uploads[0].get("ChecksumAlgorithm") == "CRC32"  # as boto3's upload_file
    listed = s3.list_parts(Bucket=bucket, Key=uploads[0]["Key"], UploadId=uploads[0]["UploadId"])["Parts"]
    numbers = {p["PartNumber"] for p in listed}
    on_server = len(numbers)
    assert on_server >= 3

    resent: list[int] = []
    data, code = vol.push(
        client, target, registry, [str(local)], part_size=5 * MiB, workers=1, on_part=lambda i, n: resent.append(n)
    )
    assert code == 0
    parts = data["items"][0]["parts"]
    assert parts == {"total": 7, "resumed": on_server, "uploaded": 7 - on_server}
    assert sorted(resent) == sorted(set(range(1, 8)) - numbers)  # only the parts the server lacked
    body = s3.get_object(Bucket=bucket, Key="models/checkpoints/big.safetensors")["Body"].read()
    assert hashlib.sha256(body).hexdigest() == sha
    assert "Uploads" not in s3.list_multipart_uploads(Bucket=bucket)


def test_a_resumed_part_whose_bytes_changed_is_sent_again(s3_url, bucket, tmp_path):
    """ListParts' ETag (the part's MD5) is compared with the local bytes before a part counts as done."""
    size = 2 * 5 * MiB + 10
    local = tmp_path / "m.safetensors"
    local.write_bytes(blob(size, "m"))
    s3 = raw(s3_url)
    key = "models/loras/m.safetensors"
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
    s3.upload_part(Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=1, Body=b"\0" * (5 * MiB))  # stale bytes
    target = volume_target(bucket, "EU-RO-1", s3_url, env())
    client = s3_client(target, workers=2)
    data, code = vol.push(
        client, target, load_registry(tmp_path), [str(local)], folder="loras", part_size=5 * MiB, workers=2
    )
    assert code == 0 and data["items"][0]["parts"] == {"total": 3, "resumed": 0, "uploaded": 3}
    assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == local.read_bytes()


# ---------------------------------------------------------------------------------------------
# diagnose + volume report
# ---------------------------------------------------------------------------------------------


def test_diagnose_names_where_the_worker_and_the_volume_disagree(s3_url, bucket, models, tmp_path):
    from workflows.volume_index import view_mismatch

    raw(s3_url).put_object(Bucket=bucket, Key="models/vae/vae.safetensors", Body=models["vae.safetensors"].read_bytes())
    proc = volume_cli("check", *target_args(s3_url, bucket), "--registry", str(tmp_path / "registry"), "--json")
    report_file = tmp_path / "volume.json"
    report_file.write_text(proc.stdout)
    report = vol.load_volume_report(str(report_file))
    unmounted = {"volume": {"mounted": False, "path": "/runpod-volume"}, "models": {}}
    [finding] = view_mismatch(unmounted, report, bucket)
    assert finding.code == "VOLUME_VIEW_MISMATCH" and "no volume at /runpod-volume" in finding.message
    other = {
        "volume": {"mounted": True, "path": "/runpod-volume"},
        "models": {
            "loras": {
                "on_disk": [{"path": "/runpod-volume/models/loras/x.safetensors", "size_bytes": 1, "source": "volume"}]
            }
        },
    }
    messages = [f.message for f in view_mismatch(other, report, bucket)]
    assert any("/runpod-volume/models/vae/vae.safetensors" in m and "not on the worker's disk" in m for m in messages)
    assert any("/runpod-volume/models/loras/x.safetensors" in m for m in messages)
    same = {
        "volume": {"mounted": True, "path": "/mnt/vol"},
        "models": {
            "vae": {
                "on_disk": [{"path": "/mnt/vol/models/vae/vae.safetensors", "size_bytes": 2500, "source": "volume"}]
            }
        },
    }
    assert view_mismatch(same, report, bucket) == []


def test_the_volume_index_scans_what_extra_model_paths_yaml_lists():
    import yaml

    from tests.conftest import REPO
    from workflows.volume_index import SCANNED_DIRS, VolumeObject, place, volume_index

    data = yaml.safe_load((REPO / "extra_model_paths.yaml").read_text())
    for section in ("runpod_volume", "runpod_volume_comfyui"):
        listed = {
            line.strip().strip("/").split("/", 1)[1]: folder
            for folder, value in data[section].items()
            if folder != "base_path"
            for line in str(value).splitlines()
            if line.strip()
        }
        assert {d: SCANNED_DIRS.get(d) for d in listed} == listed  # directory -> the folder ComfyUI lists it in
        assert set(listed) == set(SCANNED_DIRS)
    assert place("models/unet/sub/a.safetensors") == ("diffusion_models", "sub/a.safetensors", True)
    assert place("ComfyUI/models/t2i_adapter/a.pth") == ("controlnet", "a.pth", True)
    assert place("models/mystery/a.safetensors") == ("mystery", "a.safetensors", False)
    assert place("a.safetensors") == ("", "a.safetensors", False)
    index = volume_index(
        [
            VolumeObject("models/loras/a.safetensors", 1),
            VolumeObject(".s3compat_uploads/x/part1.safetensors", 5),
            VolumeObject("models/loras/readme.txt", 5),
            VolumeObject("models/loras/", 0),
        ]
    )
    assert [f.path for f in index.on_disk] == ["/runpod-volume/models/loras/a.safetensors"]
    assert index.sees("loras", "a.safetensors")


def test_keys_never_reach_the_reports(s3_url, bucket, models, tmp_path):
    """Every command above asserted its stdout/stderr; the target's repr and describe() hold no key either."""
    target = volume_target(bucket, "EU-RO-1", s3_url, env())
    secrets_absent(repr(target), json.dumps(target.describe()))
    data, _ = vol.check(s3_client(target), target, load_registry(tmp_path / "registry"))
    secrets_absent(json.dumps(data))


def test_an_upload_interrupted_before_completion_is_completed_without_sending_a_part(s3_url, bucket, tmp_path):
    size = 2 * 5 * MiB
    local = tmp_path / "done.safetensors"
    local.write_bytes(blob(size, "done"))
    s3 = raw(s3_url)
    key = "models/loras/done.safetensors"
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
    for number in (1, 2):
        body = local.read_bytes()[(number - 1) * 5 * MiB : number * 5 * MiB]
        s3.upload_part(Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=number, Body=body)
    target = volume_target(bucket, "EU-RO-1", s3_url, env())
    data, code = vol.push(
        s3_client(target), target, load_registry(tmp_path), [str(local)], folder="loras", part_size=5 * MiB
    )
    assert code == 0 and data["items"][0]["parts"] == {"total": 2, "resumed": 2, "uploaded": 0}
    assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == local.read_bytes()


def test_an_unreachable_endpoint_is_named_in_seconds(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens
    proc = volume_cli("check", *target_args(f"http://127.0.0.1:{port}", "vol1"), "--json")
    assert proc.returncode == 2 and json_out(proc)["error"]["code"] == "VOLUME_UNREACHABLE"


def test_volume_is_a_subcommand_of_comfy_runpod():
    from client.cli import build_parser

    parser, _ = build_parser()
    args = parser.parse_args(["volume", "check", "--volume-id", "v1", "--datacenter", "EU-RO-1", "--workflow", "a"])
    assert (args.command, args.volume_command, args.workflow) == ("volume", "check", ["a"])
    args = parser.parse_args(["volume", "push", "--volume-id", "v1", "--datacenter", "EU-RO-1", "dir", "--dry-run"])
    assert (args.volume_command, args.paths, args.dry_run) == ("push", ["dir"], True)


def test_boto3_is_imported_only_by_the_volume_commands():
    import subprocess
    import sys

    from tests.conftest import REPO

    modules = "client.parsers.diagnose, client.parsers.volume, client.commands.volume, client.s3.transfer"
    code = f"import sys, {modules}; print('boto3' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_a_killed_push_resumes_where_it_stopped(s3_url, bucket, tmp_path):
    """SIGKILL mid-upload (no clean-up runs at all), then the same command again."""
    import signal
    import subprocess
    import sys
    import time

    from tests.conftest import REPO

    size = 40 * 5 * MiB + 1  # 41 parts of 5 MiB, one at a time: long enough to be caught mid-way
    local = tmp_path / "huge.safetensors"
    local.write_bytes(blob(size, "huge"))
    model_free = tmp_path / "empty_registry"  # a registry whose one workflow needs no model
    model_free.mkdir()
    for name in ("smoke_image.yaml", "smoke_image.json"):
        shutil.copy(REGISTRY_DIR / name, model_free / name)
    args = [
        *push_args(s3_url, bucket, tmp_path, str(local), "--folder", "loras", "--workers", "1", "--json"),
        "--registry",
        str(tmp_path / "empty_registry"),
    ]
    proc = subprocess.Popen(
        [sys.executable, "client/volume.py", *args], cwd=REPO, env={**os.environ, **env()}, stdout=subprocess.PIPE
    )
    s3 = raw(s3_url)
    key = "models/loras/huge.safetensors"
    deadline = time.monotonic() + 60
    parts = 0
    while time.monotonic() < deadline and proc.poll() is None:
        uploads = s3.list_multipart_uploads(Bucket=bucket).get("Uploads") or []
        if uploads:
            parts = len(s3.list_parts(Bucket=bucket, Key=key, UploadId=uploads[0]["UploadId"]).get("Parts") or [])
            if parts >= 1:
                proc.send_signal(signal.SIGKILL)
                break
    proc.wait(30)
    proc.stdout.close()
    assert parts >= 1 and proc.returncode == -signal.SIGKILL, f"not killed mid-way: {parts} parts, {proc.returncode}"
    uploads = s3.list_multipart_uploads(Bucket=bucket)["Uploads"]
    on_server = len(s3.list_parts(Bucket=bucket, Key=key, UploadId=uploads[0]["UploadId"])["Parts"])
    again = volume_cli(*args)
    assert again.returncode == 0, again.stdout + again.stderr
    item = json_out(again)["result"]["items"][0]
    assert item["parts"]["resumed"] >= on_server >= 1
    assert item["parts"]["resumed"] + item["parts"]["uploaded"] == 41
    assert (
        hashlib.sha256(s3.get_object(Bucket=bucket, Key=key)["Body"].read()).hexdigest()
        == hashlib.sha256(local.read_bytes()).hexdigest()
    )


def test_a_match_found_after_every_part_was_sent_completes_the_upload(s3_url, bucket, tmp_path):
    """The other side of the held check: the right file, hashed last, is completed whole."""
    size = 2 * 5 * MiB + 99
    local = tmp_path / "right.safetensors"
    local.write_bytes(blob(size, "right"))
    hashes, sent = HeldHashes(), []

    def on_part(item: transfer.PushItem, number: int) -> None:
        sent.append(number)
        if len(sent) == 3:
            hashes.release.set()

    digest = hashlib.sha256(local.read_bytes()).hexdigest()
    item = transfer.PushItem(str(local), "models/loras/right.safetensors", size, "upload", expect_sha256=digest)
    target = volume_target(bucket, "EU-RO-1", s3_url, env())
    transfer.upload(s3_client(target), bucket, [item], part_size=5 * MiB, workers=3, on_part=on_part, hashes=hashes)
    assert sorted(sent) == [1, 2, 3] and (item.action, item.verified) == ("uploaded", "sha256+size")
    s3 = raw(s3_url)
    assert s3.get_object(Bucket=bucket, Key=item.key)["Body"].read() == local.read_bytes()
    assert "Uploads" not in s3.list_multipart_uploads(Bucket=bucket)


def test_a_resumed_part_is_kept_only_when_its_md5_or_crc32_matches_the_local_bytes(tmp_path):
    local = tmp_path / "part.bin"
    local.write_bytes(b"ours" * 1000)
    ours, theirs = transfer._crc32(local.read_bytes()), transfer._crc32(b"else" * 1000)
    opaque = {"ETag": '"not-an-md5"'}  # a server whose ETags are not MD5s
    assert transfer._part_kept(str(local), 0, 4000, {**opaque, "ChecksumCRC32": ours}, "CRC32") == {
        "ETag": '"not-an-md5"',
        "ChecksumCRC32": ours,
    }
    assert transfer._part_kept(str(local), 0, 4000, {**opaque, "ChecksumCRC32": theirs}, "CRC32") == {}
    assert transfer._part_kept(str(local), 0, 4000, opaque, None) == {}  # nothing vouches for it: sent again
    md5 = hashlib.md5(b"else" * 1000).hexdigest()
    assert transfer._part_kept(str(local), 0, 4000, {"ETag": f'"{md5}"', "ChecksumCRC32": ours}, "CRC32") == {}


def _foreign_upload(s3, bucket: str, key: str, parts: list[bytes]) -> str:
    """An unfinished upload of `key` that somebody else started (another machine, aws s3 cp)."""
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key=key, ChecksumAlgorithm="CRC32")["UploadId"]
    for number, body in enumerate(parts, 1):
        s3.upload_part(
            Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=number, Body=body, ChecksumAlgorithm="CRC32"
        )
    return upload_id


def _part_etags(s3, bucket: str, key: str, upload_id: str) -> list[str]:
    return [p["ETag"] for p in s3.list_parts(Bucket=bucket, Key=key, UploadId=upload_id).get("Parts", [])]


@pytest.mark.parametrize("right_hash", [False, True], ids=["refused", "uploaded"])
def test_a_push_never_touches_an_unfinished_upload_with_parts_it_did_not_send(s3_url, bucket, tmp_path, right_hash):
    size = 2 * 5 * MiB
    local = tmp_path / "mixed.safetensors"
    local.write_bytes(blob(size, "mine"))
    key = "models/loras/mixed.safetensors"
    s3 = raw(s3_url)
    data = local.read_bytes()
    # one upload shares nothing with the local file, one shares its first part: neither is ours
    strangers = _foreign_upload(s3, bucket, key, [blob(5 * MiB, "x"), blob(5 * MiB, "y")])
    half = _foreign_upload(s3, bucket, key, [data[: 5 * MiB], blob(5 * MiB, "z")])
    before = {u: _part_etags(s3, bucket, key, u) for u in (strangers, half)}
    expected = hashlib.sha256(data).hexdigest() if right_hash else "0" * 64
    item = transfer.PushItem(str(local), key, size, "upload", expect_sha256=expected)
    target = volume_target(bucket, "EU-RO-1", s3_url, env())
    transfer.upload(s3_client(target), bucket, [item], part_size=5 * MiB, workers=2)
    assert {u: _part_etags(s3, bucket, key, u) for u in (strangers, half)} == before  # not one part changed
    assert sorted(x["upload_id"] for x in item.left_open or []) == sorted([strangers, half])
    left = {u["UploadId"] for u in s3.list_multipart_uploads(Bucket=bucket).get("Uploads", [])}
    assert left == {strangers, half}  # ours completed or aborted, theirs as they were
    if right_hash:
        assert item.action == "uploaded" and s3.get_object(Bucket=bucket, Key=key)["Body"].read() == data
    else:
        assert (item.action, item.code) == ("refused", "PUSH_HASH_MISMATCH")
        assert "Contents" not in s3.list_objects_v2(Bucket=bucket)


def test_an_abort_that_fails_is_said_in_the_refusal_and_the_other_files_still_go_up(s3_url, bucket, tmp_path):
    from botocore.exceptions import ClientError

    bad, good = tmp_path / "bad.safetensors", tmp_path / "good.safetensors"
    bad.write_bytes(blob(2 * 5 * MiB, "bad"))
    good.write_bytes(blob(2 * 5 * MiB, "good"))
    target = volume_target(bucket, "EU-RO-1", s3_url, env())
    client = s3_client(target)

    def abort_fails(**kwargs):
        raise ClientError({"Error": {"Code": "InternalError", "Message": "try later"}}, "AbortMultipartUpload")

    client.abort_multipart_upload = abort_fails
    refused = transfer.PushItem(str(bad), "models/loras/bad.safetensors", 2 * 5 * MiB, "upload", expect_sha256="0" * 64)
    fine = transfer.PushItem(str(good), "models/loras/good.safetensors", 2 * 5 * MiB, "upload")
    transfer.upload(client, bucket, [refused, fine], part_size=5 * MiB, workers=2)
    assert (refused.action, refused.code) == ("refused", "PUSH_HASH_MISMATCH")
    assert "could not be aborted" in str(refused.message) and "abort-multipart-upload" in str(refused.message)
    [left] = refused.left_open or []
    s3 = raw(s3_url)
    assert {u["UploadId"] for u in s3.list_multipart_uploads(Bucket=bucket)["Uploads"]} == {left["upload_id"]}
    assert fine.action == "uploaded" and s3.get_object(Bucket=bucket, Key=fine.key)["Body"].read() == good.read_bytes()
    assert "Contents" not in s3.list_objects_v2(Bucket=bucket, Prefix=refused.key)
