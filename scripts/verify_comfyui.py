"""Start an installed ComfyUI once on a free port and wait for /system_stats (installer check)."""

import json
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path


def main(comfy_home: Path) -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with tempfile.TemporaryDirectory() as tmp:
        log = Path(tmp, "comfyui.log")
        for sub in ("out", "temp", "in", "user"):
            Path(tmp, sub).mkdir()
        cmd = [
            sys.executable,
            str(comfy_home / "launch.py"),
            "--cpu",
            "--listen",
            "127.0.0.1",
            "--port",
            str(port),
            "--disable-api-nodes",
            "--front-end-root",
            str(comfy_home / "empty-frontend"),
            "--output-directory",
            f"{tmp}/out",
            "--temp-directory",
            f"{tmp}/temp",
            "--input-directory",
            f"{tmp}/in",
            "--user-directory",
            f"{tmp}/user",
            "--database-url",
            f"sqlite:///{tmp}/comfyui.db",
        ]
        with log.open("wb") as fh:
            proc = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 180
            while time.monotonic() < deadline:
                if proc.poll() is not None:
                    break
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}/system_stats", timeout=2) as r:
                        version = json.load(r)["system"]["comfyui_version"]
                        print(f"ComfyUI {version} answered on port {port}")
                        return 0
                except OSError:
                    time.sleep(0.2)
            print("ComfyUI did not become ready; last log lines:", file=sys.stderr)
            print("\n".join(log.read_text(errors="replace").splitlines()[-40:]), file=sys.stderr)
            return 1
        finally:
            proc.terminate()
            proc.wait(timeout=30)


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1])))
