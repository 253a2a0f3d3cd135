"""`volume push` throughput: 1 GB of generated model files to a local S3 server, next to boto3's upload_file.

The server is moto's (`python -m moto.server`, its own process on 127.0.0.1), the same for both.
Ours is the real command function (client.commands.volume.push): it lists the volume, checks each
file's size and sha256 against a registry entry (a fresh hash cache every round, so the hashing is
paid; the hashing runs beside the parts, before each upload completes), uploads in parallel multipart
parts and checks each object's size. The baseline is boto3's own
`upload_file` (its default TransferConfig: 8 MiB parts, 10 threads) on the same files, one after the
other, on the same client configuration ours uses (same signing, checksum and retry settings, so the
transfer logic is what differs). Ours runs twice per round: cold (a fresh hash cache: every byte is
hashed, the judged figure) and with the sha256 values already cached (as after `push --dry-run`),
which isolates the transfer itself. Rounds alternate which runs first; each writes into a fresh bucket
that is emptied afterwards. The machine is shared (load averages of 5-10 on 2 cores are common), so
the judgement is on the median of the per-round ratios ours / baseline — each pair ran back to back
under the same load — and the medians and minima are reported beside it. Target: ratio ≤ 1.10.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from benchmarks._common import REPO, reps, stats, write_result

TOTAL_BYTES = int(os.environ.get("BENCH_VOLUME_BYTES", str(1024**3)))
FILES = 8
ACCESS, SECRET = "user_BENCHACCESS", "rps_BENCHSECRET"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _server() -> tuple[subprocess.Popen, str]:
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return proc, f"http://127.0.0.1:{port}"
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("moto server did not start")


def _generate(directory: Path) -> Path:
    """FILES files of TOTAL_BYTES/FILES random bytes, and a registry entry with their sizes and sha256."""
    local, reg = directory / "models", directory / "registry"
    local.mkdir()
    reg.mkdir()
    size = TOTAL_BYTES // FILES
    lines = ["id: bench", "title: bench", "workflow: bench.json", "models:"]
    for i in range(FILES):
        data = os.urandom(size)
        (local / f"bench_{i}.safetensors").write_bytes(data)
        lines.append(
            f"  - {{folder: loras, name: bench_{i}.safetensors, size_bytes: {size}, "
            f"sha256: {hashlib.sha256(data).hexdigest()}}}"
        )
    (reg / "bench.json").write_text(json.dumps({"1": {"class_type": "SaveImage", "inputs": {}}}))
    (reg / "bench.yaml").write_text("\n".join(lines) + "\n")
    return local


def _cpu_s(pid: int) -> float | None:
    """CPU seconds (user + system, all threads) of a process so far, from /proc; None where there is none."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _server_cpu(pid: int, start: float | None) -> float | None:
    now = _cpu_s(pid)
    return None if now is None or start is None else now - start


def _empty(client: Any, bucket: str) -> None:
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for obj in page.get("Contents") or []:
            client.delete_object(Bucket=bucket, Key=obj["Key"])  # the local bench server only
    client.delete_bucket(Bucket=bucket)


def main() -> dict[str, Any]:
    import boto3

    from client.commands import volume as vol
    from client.config import volume_target
    from client.s3.adapter import s3_client
    from workflows.registry import load_registry

    rounds = reps(5, minimum=3)
    server, url = _server()
    try:
        with tempfile.TemporaryDirectory(prefix="bench-volume-") as tmp:
            local = _generate(Path(tmp))
            files = sorted(local.iterdir())
            registry = load_registry(Path(tmp) / "registry")
            plain = boto3.client(
                "s3", endpoint_url=url, aws_access_key_id=ACCESS, aws_secret_access_key=SECRET, region_name="us-east-1"
            )
            env = {"RUNPOD_S3_ACCESS_KEY": ACCESS, "RUNPOD_S3_SECRET_KEY": SECRET}
            ours_s: list[float] = []
            ours_upload_s: list[float] = []
            ours_plan_s: list[float] = []
            base_s: list[float] = []
            cached_s: list[float] = []
            cpu: dict[str, list[float]] = {"ours": [], "cached": [], "baseline": []}
            server_cpu: dict[str, list[float | None]] = {"ours": [], "cached": [], "baseline": []}

            def run_ours(r: int, cache: Path | None = None) -> None:
                bucket = f"ours{uuid.uuid4().hex[:10]}"
                plain.create_bucket(Bucket=bucket)
                target = volume_target(bucket, "EU-RO-1", url, env)
                client = s3_client(target)
                t0, c0, s0 = time.perf_counter(), time.process_time(), _cpu_s(server.pid)
                data, code = vol.push(
                    client, target, registry, [str(local)], hash_cache=cache or Path(tmp) / f"h{r}.json"
                )
                (cached_s if cache else ours_s).append(time.perf_counter() - t0)
                cpu["cached" if cache else "ours"].append(time.process_time() - c0)
                server_cpu["cached" if cache else "ours"].append(_server_cpu(server.pid, s0))
                assert code == 0 and data["summary"]["upload"] == FILES, data["summary"]
                if not cache:
                    ours_upload_s.append(data["timings"]["upload_s"])
                    ours_plan_s.append(data["timings"]["plan_s"])
                _empty(plain, bucket)

            same = s3_client(volume_target("x", "EU-RO-1", url, env))

            def run_base() -> None:
                bucket = f"base{uuid.uuid4().hex[:10]}"
                plain.create_bucket(Bucket=bucket)
                t0, c0, s0 = time.perf_counter(), time.process_time(), _cpu_s(server.pid)
                for f in files:
                    same.upload_file(str(f), bucket, f"models/loras/{f.name}")
                base_s.append(time.perf_counter() - t0)
                cpu["baseline"].append(time.process_time() - c0)
                server_cpu["baseline"].append(_server_cpu(server.pid, s0))
                _empty(plain, bucket)

            warm = Path(tmp) / "warm.json"

            run_ours(-1, warm)  # warm-up: imports, connections, moto's first buckets; fills the warm cache
            cached_s.clear(), cpu["cached"].clear(), server_cpu["cached"].clear()
            for r in range(rounds):
                if r % 2 == 0:
                    run_ours(r)
                    run_base()
                    run_ours(r, warm)
                else:
                    run_ours(r, warm)
                    run_base()
                    run_ours(r)
    finally:
        server.terminate()
        server.wait(10)

    ours, base = stats(ours_s, 3), stats(base_s, 3)
    ratios = [o / b for o, b in zip(ours_s, base_s, strict=True)]
    ratio = round(statistics.median(ratios), 3)
    mb = TOTAL_BYTES / 1e6
    result = {
        "what": f"push {TOTAL_BYTES:,} bytes in {FILES} generated files to a local S3 server (moto)",
        "target": "ours within 10 % of boto3 upload_file (median of the per-round ratios ≤ 1.10)",
        "bytes": TOTAL_BYTES,
        "files": FILES,
        "rounds": rounds,
        "ours_s": ours,
        "ours_plan_s": stats(ours_plan_s, 3),
        "ours_upload_s": stats(ours_upload_s, 3),
        "baseline_boto3_upload_file_s": base,
        "ours_hashes_cached_s": stats(cached_s, 3),
        "ratio_hashes_cached": round(statistics.median(c / b for c, b in zip(cached_s, base_s, strict=True)), 3),
        "ours_mb_s": round(mb / ours["median"], 1),
        "baseline_mb_s": round(mb / base["median"], 1),
        "client_cpu_s": {k: stats(v, 3) for k, v in cpu.items()},
        "server_cpu_s": {k: stats(v, 3) for k, v in server_cpu.items()},
        "cpu_ratio": _cpu_ratio(cpu, server_cpu),
        "ratio": ratio,
        "ratio_per_round": [round(r, 3) for r in ratios],
        "ratio_of_medians": round(ours["median"] / base["median"], 3),
        "ratio_of_minima": round(ours["min"] / base["min"], 3),
        "met": ratio <= 1.10,
        "notes": [
            "ours includes listing the volume, sha256 + size checks against the registry, and a HEAD per object",
            "client_cpu_s: CPU seconds of the uploading process (all threads), independent of the machine's load",
            "server_cpu_s: CPU seconds of the S3 server process during each run; cpu_ratio: median of the "
            "per-round (client + server CPU) ours / baseline, what the ratio tends to when the cores are saturated",
            "on this machine the S3 server shares the 2 cores with the client: the sha256 pass (about 0.6 CPU-s per "
            "GiB here) runs beside the parts at a lower priority and each upload completes only once its file's "
            "sha256 matched; against RunPod the network is the bottleneck and the hashing overlaps it",
            "ours: 16 MiB parts, 10 parallel parts (files overlap), CRC32 per part as upload_file; "
            "baseline: boto3 defaults (8 MiB, 10 threads), files one by one",
        ],
    }
    write_result("volume_push", result)
    return result


def _cpu_ratio(cpu: dict[str, list[float]], server: dict[str, list[float | None]]) -> float | None:
    pairs = zip(cpu["ours"], server["ours"], cpu["baseline"], server["baseline"], strict=True)
    ratios = [(c + s) / (cb + sb) for c, s, cb, sb in pairs if s is not None and sb is not None]
    return round(statistics.median(ratios), 3) if ratios else None


if __name__ == "__main__":
    print(json.dumps(main(), indent=2))
