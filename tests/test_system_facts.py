"""Ask the system, not the configuration (handler/system_facts.py), against real disks and a real stack.

A read-only output disk and an inode-starved one are real tmpfs mounts (the suite runs as root, as CI
does); ComfyUI's command line is read from /proc of the real ComfyUI the real worker started; the
bucket is the moto S3 server and a port nothing listens on.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
from pathlib import Path

import pytest

from handler.config import Settings
from handler.runtime import Runtime
from handler.system_facts import DirFacts, argv_findings, bucket_finding, dir_finding, flag, probe_dir
from tests.conftest import make_stack, runsync
from tests.test_handler_inprocess import s3_server  # noqa: F401 (a fixture)


def _mount_tmpfs(path: Path, options: str) -> bool:
    path.mkdir(parents=True, exist_ok=True)
    return (
        subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)], capture_output=True).returncode == 0
    )


@pytest.fixture
def tmpfs(tmp_path):
    mounted: list[Path] = []

    def mount(name: str, options: str, under: Path | None = None) -> Path:
        path = (under or tmp_path) / name
        if not _mount_tmpfs(path, options):
            if os.geteuid() == 0:  # CI runs as root: there it must run, never skip
                pytest.fail(f"running as root but cannot mount a tmpfs ({options})")
            pytest.skip("cannot mount a tmpfs here: needs root (CI runs as root, so it runs there)")
        mounted.append(path)
        return path

    yield mount
    for path in mounted:
        subprocess.run(["umount", "-l", str(path)], check=False)


def test_a_read_only_disk_is_read_only_not_full(tmpfs):
    facts = probe_dir("output", "COMFY_OUTPUT_DIR", tmpfs("ro", "size=4m,ro"))
    assert facts.read_only and facts.errno_name == "EROFS" and facts.free_bytes and facts.free_bytes > 0
    finding = dir_finding(facts)
    assert finding is not None and finding.code == "DISK_READ_ONLY"
    assert "read-only" in finding.message and "Free space" not in finding.fix


def test_an_inode_starved_disk_with_free_bytes_is_inodes_full(tmpfs):
    disk = tmpfs("inodes", "size=16m,nr_inodes=24")
    for i in range(64):  # create files until no inode is left
        try:
            (disk / f"f{i}").touch()
        except OSError:
            break
    facts = probe_dir("output", "COMFY_OUTPUT_DIR", disk)
    assert facts.free_bytes is not None and facts.free_bytes > 8e6  # megabytes free...
    assert facts.free_inodes == 0 and facts.errno_name == "ENOSPC"  # ...and no file can be created
    finding = dir_finding(facts)
    assert finding is not None and finding.code == "DISK_INODES_FULL"
    assert "inodes" in finding.message and "freeing bytes does not help" in finding.fix


def test_a_writable_disk_has_no_finding_and_the_probe_leaves_nothing(tmp_path):
    facts = probe_dir("output", "COMFY_OUTPUT_DIR", tmp_path)
    assert facts.write_error is None and dir_finding(facts) is None and list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("errno_name", "code"),
    [("EACCES", "PERMISSION_DENIED"), ("ENOSPC", "DISK_FULL"), ("EDQUOT", "DISK_FULL")],
)
def test_the_write_error_decides_the_code(errno_name, code):
    facts = DirFacts("output", "COMFY_OUTPUT_DIR", "/x", True, f"OSError: {errno_name}", errno_name, False, 0, 1000)
    assert dir_finding(facts).code == code


def test_a_directory_that_is_not_there_is_a_mismatch_naming_the_setting(tmp_path):
    finding = dir_finding(probe_dir("temp", "COMFY_TEMP_DIR", tmp_path / "nope"))
    assert finding.code == "CONFIG_MISMATCH" and "COMFY_TEMP_DIR says" in finding.message


def test_the_last_flag_wins_as_in_argparse():
    argv = ["main.py", "--output-directory", "/a", "--port", "8188", "--output-directory=/b"]
    assert flag(argv, "--output-directory") == "/b" and flag(argv, "--port") == "8188"
    settings = Settings.from_env({"COMFY_OUTPUT_DIR": "/a", "COMFY_PORT": "8188"})
    (finding,) = argv_findings(settings, argv, "/proc/1/cmdline")
    assert finding.code == "CONFIG_MISMATCH"
    assert "COMFY_OUTPUT_DIR says /a" in finding.message and "--output-directory /b" in finding.message


def test_a_bucket_that_does_not_answer_is_named(s3_server):  # noqa: F811
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{s.getsockname()[1]}"
    keys = {"BUCKET_ACCESS_KEY_ID": "testing", "BUCKET_SECRET_ACCESS_KEY": "testing"}
    down = bucket_finding(Runtime(Settings.from_env({"BUCKET_ENDPOINT_URL": closed, **keys})))
    assert down is not None and down.code == "BUCKET_UNREACHABLE" and closed in down.message
    missing = Runtime(Settings.from_env({"BUCKET_ENDPOINT_URL": s3_server, "BUCKET_NAME": "no-such-rp", **keys}))
    found = bucket_finding(missing)
    assert found is not None and "'no-such-rp'" in found.message
    import boto3

    boto3.client(
        "s3",
        endpoint_url=s3_server,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        region_name="us-east-1",
    ).create_bucket(Bucket="facts-ok")
    ok = Runtime(Settings.from_env({"BUCKET_ENDPOINT_URL": s3_server, "BUCKET_NAME": "facts-ok", **keys}))
    assert bucket_finding(ok) is None
    # compatibility mode without BUCKET_NAME: the bucket checked is the one uploads go to, the month's
    from handler.outputs import sdk_bucket

    compat = Runtime(Settings.from_env({"BUCKET_ENDPOINT_URL": s3_server, "RESPONSE_FORMAT": "worker-comfyui", **keys}))
    month = bucket_finding(compat)
    assert month is not None and f"{sdk_bucket()!r}" in month.message  # not created yet: named, not None
    boto3.client(
        "s3", endpoint_url=s3_server, aws_access_key_id="testing", aws_secret_access_key="testing"
    ).create_bucket(Bucket=sdk_bucket())
    assert bucket_finding(compat) is None


@pytest.mark.stack
def test_the_worker_asks_the_system_before_a_job_and_in_diagnose(tmpfs, tmp_path):
    """Output dir on a read-only disk, and COMFY_EXTRA_ARGS moving ComfyUI's temp dir elsewhere: diagnose
    names both, with both sides; a job is refused before it runs with the first, listing both."""
    stack = make_stack(tmp_path / "stack")
    # Beside the stack, not in pytest's private tmp dir, which ComfyUI's own user can't enter.
    here = stack.run_dir.resolve()
    out_dir = tmpfs("ro-out", "size=4m,ro", under=here)
    stack.env_overrides["COMFY_OUTPUT_DIR"] = str(out_dir)
    # Inside the temp dir ComfyUI's user may write (Landlock's write roots), yet not the dir the settings name.
    elsewhere = stack.comfy_dir.resolve() / "temp" / "elsewhere-temp"
    extra = stack.env()["COMFY_EXTRA_ARGS"] + f" --temp-directory {elsewhere}"
    stack.env_overrides["COMFY_EXTRA_ARGS"] = extra
    stack.start(wait=240)
    try:
        report = runsync(stack, {"mode": "diagnose"}, timeout=120)["output"]
        by_code = {f["code"]: f for f in report["findings"]}
        assert by_code["DISK_READ_ONLY"]["path"] == str(out_dir), report["findings"]
        mismatch = by_code["CONFIG_MISMATCH"]
        assert f"--temp-directory {elsewhere}" in mismatch["message"] and "COMFY_TEMP_DIR says" in mismatch["message"]
        assert "/proc/" in mismatch["message"]  # read from the kernel, not from the settings
        envelope = runsync(stack, {"workflow": "smoke_image"}, timeout=60)
        assert envelope["status"] == "FAILED", envelope
        err = json.loads(envelope["error"])
        assert err["error_code"] == "DISK_READ_ONLY", err
        assert {f["code"] for f in err["findings"]} == {"DISK_READ_ONLY", "CONFIG_MISMATCH"}
    finally:
        stack.stop()


def test_the_pre_job_check_is_cached_per_runtime_and_re_probed_after_its_ttl(tmp_path):
    from handler import system_facts

    dirs = {name: tmp_path / name for name in ("out", "temp", "in")}
    for d in dirs.values():
        d.mkdir()
    env = {
        "COMFY_OUTPUT_DIR": str(dirs["out"]),
        "COMFY_TEMP_DIR": str(dirs["temp"]),
        "COMFY_INPUT_DIR": str(dirs["in"]),
    }
    # an unreachable ComfyUI port: no command line to read, only the disks count
    rt = Runtime(Settings.from_env({**env, "COMFY_PORT": "9"}))
    assert system_facts.job_blocker(rt) is None
    dirs["temp"].rmdir()
    assert system_facts.job_blocker(rt) is None  # within the TTL: the cached probe, no disk access
    vars(rt)["_system_facts_cache"].at -= system_facts.PROBE_TTL_S + 1
    blocker = system_facts.job_blocker(rt)
    assert blocker is not None and blocker.code == "CONFIG_MISMATCH" and "COMFY_TEMP_DIR" in blocker.message
    # a new runtime never inherits another's findings
    dirs["temp"].mkdir()
    assert system_facts.job_blocker(Runtime(Settings.from_env({**env, "COMFY_PORT": "9"}))) is None


def test_a_directory_the_system_cannot_even_stat_is_a_finding_not_a_crash(tmp_path):
    # is_dir() raises for errors it does not classify (EACCES on a parent, ENAMETOOLONG): never escape a job
    facts = probe_dir("output", "COMFY_OUTPUT_DIR", tmp_path / ("x" * 300))
    assert facts.errno_name == "ENAMETOOLONG" and "File name too long" in (facts.write_error or "")
    finding = dir_finding(facts)
    assert finding is not None and finding.code == "PERMISSION_DENIED" and "COMFY_OUTPUT_DIR" in finding.fix
