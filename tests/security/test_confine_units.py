"""The confinement's parts on their own: Landlock in a real child process, the three reads closed at their
root (literal-value wrappers, link-fed file inputs, /object_info's metadata), ComfyUI's command line."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from handler import landlock
from handler.config import Settings
from handler.confine import prepare
from handler.supervisor import comfy_command
from workflows.analysis import Context
from workflows.judge import judge_before_queue
from workflows.paths import file_inputs, path_findings
from workflows.policy import JobPolicy, policy_findings

ABI, WHY = landlock.abi_version()
needs_landlock = pytest.mark.skipif(ABI == 0, reason=f"this kernel has no Landlock: {WHY}")

# Input specs as ComfyUI 0.3.75's /object_info gives them (copied from the real answer).
OBJECT_INFO = {
    "LoadImage": {"input": {"required": {"image": [[], {"image_upload": True}]}}},
    "WebcamCapture": {
        "input": {"required": {"image": ["WEBCAM", {}], "width": ["INT", {}], "capture_on_queue": ["BOOLEAN", {}]}}
    },
    "LoadImageOutput": {
        "input": {
            "required": {
                "image": ["COMBO", {"image_upload": True, "image_folder": "output", "remote": {"route": "/x"}}]
            }
        }
    },
    "PackLoader": {"input": {"required": {"clip": ["COMBO", {"audio_upload": True, "options": []}], "n": ["INT", {}]}}},
    "StringConcatenate": {"input": {"required": {"string_a": ["STRING", {}], "string_b": ["STRING", {}]}}},
}


def refused(workflow: dict, origin: str = "inline") -> list[str]:
    found = policy_findings(workflow, JobPolicy(), origin=origin, object_info=OBJECT_INFO)
    return [f"{f.code}:{f.node_id}:{f.input}" for f in found]


def test_a_literal_value_wrapper_is_judged_like_the_value_it_wraps():
    workflow = {"1": {"class_type": "LoadImage", "inputs": {"image": {"__value__": "/etc/hostname"}}}}
    assert refused(workflow) == ["PATH_REFUSED:1:image"]
    assert refused(workflow, origin="registered") == ["PATH_REFUSED:1:image"]  # overrides on a registered one
    assert refused({"1": {"class_type": "LoadImage", "inputs": {"image": {"__value__": "ok.png"}}}}) == []


def test_the_issues_probes_are_refused():
    webcam = {"1": {"class_type": "WebcamCapture", "inputs": {"image": {"__value__": "/root/secret.png"}}}}
    record = {"1": {"class_type": "RecordAudio", "inputs": {"audio": "/var/lib/secret.wav"}}}
    assert refused(webcam) == ["PATH_REFUSED:1:image"]
    assert refused(record) == ["PATH_REFUSED:1:audio"]


def test_a_file_input_fed_by_a_link_is_refused_unless_from_a_primitive():
    workflow = {
        "1": {"class_type": "StringConcatenate", "inputs": {"string_a": "/etc/", "string_b": "hostname"}},
        "2": {"class_type": "LoadImage", "inputs": {"image": ["1", 0]}},
        "3": {"class_type": "PrimitiveString", "inputs": {"value": "/etc/passwd"}},
        "4": {"class_type": "LoadImage", "inputs": {"image": ["3", 0]}},
        "5": {"class_type": "PrimitiveString", "inputs": {"value": "fine.png"}},
        "6": {"class_type": "LoadImage", "inputs": {"image": ["5", 0]}},
        "7": {"class_type": "LoadImage", "inputs": {"image": ["x", 0, 1]}},  # a list: not a file name
    }
    assert refused(workflow) == ["PATH_REFUSED:2:image", "PATH_REFUSED:4:image", "PATH_REFUSED:7:image"]


def test_path_inputs_come_from_object_info_metadata():
    refs = {
        (r.class_type, r.input, r.base)
        for r in file_inputs({"1": {"class_type": "PackLoader", "inputs": {"clip": "a.wav", "n": 3}}}, OBJECT_INFO)
    }
    assert refs == {("PackLoader", "clip", "input")}
    out = {"1": {"class_type": "LoadImageOutput", "inputs": {"image": "x.png"}}}
    assert [r.base for r in file_inputs(out, OBJECT_INFO)] == ["output"]
    escaping = {"1": {"class_type": "PackLoader", "inputs": {"clip": "../../../../etc/shadow", "n": 1}}}
    assert [f.code for f in path_findings(escaping, None, OBJECT_INFO)] == ["PATH_REFUSED"]
    # and the judge hands /object_info on: the same refusal before anything else
    ctx = Context(OBJECT_INFO)
    found = judge_before_queue(escaping, ctx, entry=None, origin="inline", policy=JobPolicy())
    assert [f.code for f in found] == ["PATH_REFUSED"]


def test_isolate_jobs_runs_comfyui_without_its_cache():
    assert "--cache-none" in comfy_command(Settings.from_env({"ISOLATE_JOBS": "1"}))
    assert "--cache-none" not in comfy_command(Settings.from_env({}))


_CHILD = r"""
import os, sys
for op, path in [("read", p) for p in sys.argv[1].split(",")] + [("write", p) for p in sys.argv[2].split(",")]:
    try:
        if op == "read":
            open(path, "rb").read(1)
        else:
            open(path, "w").write("x")
        print(op, path, "ok")
    except OSError as exc:
        print(op, path, os.strerror(exc.errno))
"""


@needs_landlock
def test_landlock_lets_the_child_read_and_write_only_what_its_rules_allow(tmp_path: Path):
    allowed, denied, out = tmp_path / "allowed", tmp_path / "denied", tmp_path / "out"
    for d in (allowed, denied, out):
        d.mkdir()
    (allowed / "f").write_text("a")
    (denied / "f").write_text("d")
    pyroot = [Path(p) for p in {sys.prefix, sys.base_prefix, *sys.path} if p and os.path.exists(p)]
    rules = [
        (p, landlock.READ)
        for p in [*pyroot, Path("/usr"), Path("/lib"), Path("/lib64"), Path("/etc/ld.so.cache"), allowed]
    ]
    rules += [(out, landlock.WRITE)]
    fd, _skipped = landlock.build_ruleset(ABI, rules)
    try:
        result = subprocess.run(
            [sys.executable, "-I", "-c", _CHILD, f"{allowed}/f,{denied}/f,/etc/hostname", f"{out}/new,{allowed}/new"],
            capture_output=True,
            text=True,
            preexec_fn=lambda: landlock.restrict_self(fd),
            check=True,
        ).stdout.splitlines()
    finally:
        landlock.close(fd)
    assert result == [
        f"read {allowed}/f ok",
        f"read {denied}/f Permission denied",
        "read /etc/hostname Permission denied",
        f"write {out}/new ok",
        f"write {allowed}/new Permission denied",
    ]


@needs_landlock
def test_prepare_reports_what_confines_comfyui(tmp_path: Path):
    settings = Settings.from_env(
        {"COMFY_DIR": str(tmp_path / "comfy"), "COMFY_PYTHON": sys.executable, "COMFY_RUN_AS": ""}
    )
    launch = prepare(settings, {"PATH": "/usr/bin", "DATABASE_URL": "postgres://u:pw@h/db"})
    try:
        report = launch.confinement.report()
    finally:
        launch.close()
    user = {"active": False, "name": None, "uid": None, "why_not": "disabled by COMFY_RUN_AS", "note": None}
    assert report["user"] == user
    assert report["landlock"]["active"] and report["landlock"]["abi"] == ABI
    assert str(settings.output_dir) in report["landlock"]["write"]
    assert "DATABASE_URL" not in launch.env and launch.env["HOME"] == str(settings.user_dir / "home")
    off = prepare(Settings.from_env({"COMFY_DIR": str(tmp_path / "c2"), "CONFINE_FS": "0", "COMFY_RUN_AS": ""}), {})
    assert off.confinement.report()["landlock"] == {
        "active": False,
        "abi": None,
        "why_not": "disabled by CONFINE_FS=0",
        "read": [],
        "write": [],
        "net": {"active": False, "bind": None, "connect": None, "why_not": "Landlock is off: disabled by CONFINE_FS=0"},
        "phases": {
            "start": {"active": False, "why_not": "disabled by CONFINE_FS=0"},
            "serve": {"active": False, "at": None, "why_not": "disabled by CONFINE_FS=0", "start_threads": []},
        },
    }
