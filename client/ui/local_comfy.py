"""A local ComfyUI for the editor: the project's CPU install, with the editor's front-end package.

The install (scripts/install_comfyui.sh: ~/.cache/comfy-runpod/comfyui-0.3.75) has no front end of its
own (the worker never serves one); the `ui` extra brings comfyui-frontend-package at the version
ComfyUI 0.3.75 asks for, and ComfyUI is pointed at it with --front-end-root. Everything ComfyUI writes
(input, output, user, its database, custom_nodes) lives in one base directory, not in the install.
"""

from __future__ import annotations

from pathlib import Path

from client.errors import ConfigError, UsageError
from client.local_comfy import LocalComfy, LocalComfyError, free_port

__all__ = ["EditorComfy", "free_port", "frontend_root"]
READY_TIMEOUT_S = 180.0


def frontend_root() -> Path:
    """The editor's files from the installed comfyui-frontend-package (the `ui` extra)."""
    try:
        import comfyui_frontend_package  # type: ignore[import-untyped,unused-ignore]
    except ImportError:
        raise ConfigError(
            "the ComfyUI editor's front-end package is not installed",
            fix="pip install 'comfy-runpod[ui]' (or use --local-comfy URL with a ComfyUI that serves its editor).",
        ) from None
    return Path(comfyui_frontend_package.__file__).parent / "static"


class EditorComfy(LocalComfy):
    """The launcher's ComfyUI: client.local_comfy's private process (start, wait, stop), with the
    editor's front end and every folder in one base directory."""

    def __init__(self, home: Path, base_dir: Path, port: int) -> None:
        super().__init__(home, home / "venv/bin/python", base_dir / "custom_nodes", base_dir, port)

    @property
    def base_dir(self) -> Path:
        return self.run_dir

    def command(self) -> list[str]:
        main = self.comfy_home / "launch.py"
        if not main.is_file():
            main = self.comfy_home / "ComfyUI/main.py"
        for needed in (self.python, main):
            if not needed.exists():
                raise UsageError(
                    f"no ComfyUI install at {self.comfy_home} ({needed} is missing)",
                    fix="Run `make comfyui`, give --comfy-home DIR, or --local-comfy URL for a ComfyUI you run.",
                )
        for sub in ("input", "output", "user", "custom_nodes", "models", "temp"):
            (self.base_dir / sub).mkdir(parents=True, exist_ok=True)
        user = self.base_dir / "user"
        return [
            str(self.python),
            str(main),
            "--cpu",
            "--listen",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--disable-auto-launch",
            "--disable-api-nodes",
            "--base-directory",
            str(self.base_dir),
            "--user-directory",
            str(user),
            "--database-url",
            f"sqlite:///{user}/comfyui.db",
            "--front-end-root",
            str(frontend_root()),
        ]

    def start(self, timeout_s: float = READY_TIMEOUT_S) -> None:
        try:
            super().start(timeout_s)
        except LocalComfyError as exc:
            raise UsageError(
                f"the local ComfyUI did not start (see {self.log}): {exc}",
                code="LOCAL_COMFY_FAILED",
                fix="Check the log; --local-comfy URL uses a ComfyUI you run instead.",
            ) from None
