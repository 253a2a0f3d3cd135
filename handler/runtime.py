"""The worker's long-lived state: settings, one pooled ComfyUI client, one event stream, the registry."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from comfyui_client import ComfyClient, EventStream
from handler.config import Settings
from workflows.registry import Registry, default_registry
from workflows.secrets import redact as _redact


@dataclass
class Runtime:
    settings: Settings
    registry: Registry = field(default_factory=default_registry)
    started_at: float = field(default_factory=time.monotonic)
    _object_info: dict[str, Any] | None = field(default=None, repr=False)

    @cached_property
    def comfy(self) -> ComfyClient:
        return ComfyClient(self.settings.comfy_url)

    @cached_property
    def events(self) -> EventStream:
        return EventStream(self.comfy.ws_url).start()

    @cached_property
    def s3(self):  # noqa: ANN201 - S3Store, imported lazily with boto3
        from handler.outputs import S3Store

        s = self.settings
        assert s.bucket_endpoint_url
        return S3Store(
            s.bucket_endpoint_url,
            s.bucket_access_key_id,
            s.bucket_secret_access_key,
            s.bucket_name,
            s.bucket_region,
            expires_s=s.presign_expires_s,
        )

    def object_info(self, refresh: bool = False) -> dict[str, Any]:
        """ComfyUI's node definitions, fetched once (≈0.5 MB); refresh after packs may have changed."""
        if refresh or self._object_info is None:
            self._object_info = self.comfy.object_info()
        return self._object_info

    def comfy_pid(self) -> int | None:
        path = self.settings.comfy_pid_file
        try:
            return int(path.read_text().strip()) if path else None
        except (OSError, ValueError):
            return None

    def comfy_process_alive(self) -> bool | None:
        """True/False when the entrypoint told us ComfyUI's PID, None when we can't tell."""
        pid = self.comfy_pid()
        if pid is None:
            return None
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        # A zombie still answers kill(0): look at its state.
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            return True
        return state not in ("Z", "X")

    def logs_tail(self, lines: int = 80) -> list[str]:
        """The last lines of ComfyUI's log, with secrets removed."""
        try:
            with self.settings.comfy_log.open("rb") as fh:
                fh.seek(0, os.SEEK_END)
                fh.seek(max(0, fh.tell() - 64 * 1024))
                text = fh.read().decode("utf-8", "replace")
        except OSError:
            return []
        return [redact(line, self.settings.secrets()) for line in text.splitlines()[-lines:]]


def redact(text: str, secrets: list[str]) -> str:
    """Kept for existing imports: the one implementation is workflows.secrets.redact."""
    return _redact(text, secrets)
