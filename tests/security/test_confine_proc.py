"""CUDA's driver (570+) names its threads in /proc/<pid>/task/<tid>/comm during cuInit and fails with error
304 when it can't: with a GPU's device present ComfyUI may write /proc's files, without one it may not.
The GPU itself can't be had here: only its device's presence is stood in; the write is the real kernel's."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from handler import confine, landlock

pytestmark = pytest.mark.skipif(landlock.abi_version()[0] == 0, reason=f"no Landlock here: {landlock.abi_version()[1]}")

NAME_A_THREAD = """
import ctypes, os, threading
libc = ctypes.CDLL(None)
ready, done = threading.Event(), threading.Event()
t = threading.Thread(target=lambda: (ready.set(), done.wait(30)))
t.start()
ready.wait(30)
# as the driver does: glibc names another thread by writing /proc/self/task/<tid>/comm (O_RDWR)
err = libc.pthread_setname_np(ctypes.c_ulong(t.ident), b"cuda-evt")
done.set()
t.join()
print("named" if err == 0 else os.strerror(err))
"""


@pytest.mark.parametrize("gpu", [True, False])
def test_comfyui_may_name_its_threads_in_proc_only_with_a_gpu(tmp_path: Path, monkeypatch, gpu):
    from tools.localstack import confinable

    confinable(tmp_path, Path(sys.executable))
    stand_in = ["/dev/nvidia-stand-in"] if gpu else []  # a missing path: its own rule is skipped, not its effect
    monkeypatch.setattr(confine, "device_paths", lambda: [*confine.DEVICES, *stand_in])
    s = confine.Settings.from_env({"COMFY_DIR": str(tmp_path / "comfy"), "COMFY_PYTHON": sys.executable})
    launch = confine.prepare(s, {"PATH": "/usr/bin:/bin"})
    assert ("/proc" in launch.confinement.write) is gpu
    try:
        out = subprocess.run(
            [sys.executable, "-I", "-c", NAME_A_THREAD],
            capture_output=True,
            text=True,
            timeout=60,
            cwd="/",
            **launch.popen_kwargs(),
        )
    finally:
        launch.close()
    assert out.stdout.strip() == ("named" if gpu else "Permission denied"), out.stderr
