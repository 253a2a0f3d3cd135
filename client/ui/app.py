"""Wire the launcher together and run it until Ctrl-C: local ComfyUI, endpoint facts, job runner, server."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from client.config import Settings
from client.errors import ConfigError, UsageError
from client.jobflow import Backend
from client.ledger import Ledger
from client.ui.facts import FactsCache
from client.ui.jobs import Emit, JobRunner
from client.ui.local_comfy import EditorComfy, free_port
from comfyui_client import ComfyClient
from workflows.registry import Registry

log = logging.getLogger("client.ui")


def serve(
    settings: Settings,
    api: Backend,
    *,
    registry: Registry | None,
    host: str,
    port: int,
    mode: str,
    local_comfy: str | None,
    comfy_home: Path,
    base_dir: Path,
    note: Callable[[str], None],
) -> dict[str, Any]:
    """Serve the editor until interrupted; what the session did (its jobs)."""
    try:
        from aiohttp import web

        from client.ui.server import Launcher, build_app
    except ImportError:
        raise ConfigError(
            "`comfy-runpod ui` needs aiohttp", fix="pip install 'comfy-runpod[ui]' (aiohttp and the editor)."
        ) from None
    target = settings.require_target()
    started: EditorComfy | None = None
    if local_comfy is None:
        started = EditorComfy(comfy_home, base_dir, free_port())
        note(f"starting the local ComfyUI (editor) from {comfy_home} in {base_dir} ...")
        started.start()
        local_comfy = started.url
    elif not local_comfy.startswith(("http://", "https://")):
        raise UsageError(f"--local-comfy must be an http(s) URL, got {local_comfy[:80]!r}")

    def runner(local: ComfyClient, emit: Emit, changed: Callable[[], None]) -> JobRunner:
        return JobRunner(api, settings, local, emit, ledger=Ledger(settings.ledger_path), on_change=changed)

    launcher = Launcher(
        local_comfy,
        runner,
        FactsCache(api, timeout_s=settings.timeout_s, poll_interval_s=min(settings.poll_interval_s, 1.0)),
        registry,
        mode=mode,
        endpoint_label=target.label,
        listen_host=host,
    )
    app = build_app(launcher)
    if host not in ("127.0.0.1", "localhost", "::1"):
        note(f"warning: listening on {host}: anyone who reaches it can queue jobs billed to this API key")
    note(f"editor: http://{host}:{port}/  (Queue runs on {target.label}; mode {mode}; Ctrl-C stops)")
    try:
        web.run_app(app, host=host, port=port, print=None, handle_signals=True)
    finally:
        if started is not None:
            started.stop()
    return {"url": f"http://{host}:{port}/", "local_comfyui": local_comfy, **launcher.state()}
