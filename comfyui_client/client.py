"""ComfyUI's HTTP API: one pooled session, a timeout on every call, retries for idempotent GETs."""

from __future__ import annotations

import json
from collections.abc import Collection
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import requests
import urllib3
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from comfyui_client.errors import ComfyHTTPError, ComfyUnavailable, PromptRejected


class ComfyClient:
    """Thin, typed access to the ComfyUI endpoints this project uses."""

    def __init__(self, base_url: str, *, timeout: float = 10.0, pool_size: int = 16) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.session = requests.Session()
        # ComfyUI is local: skip the per-request proxy/.netrc lookups in the environment (~0.5 ms each).
        self.session.trust_env = False
        retry = Retry(
            total=2, connect=0, backoff_factor=0.1, status_forcelist=(502, 503, 504), allowed_methods=frozenset({"GET"})
        )
        self.session.mount("http://", HTTPAdapter(pool_connections=2, pool_maxsize=pool_size, max_retries=retry))
        self.session.mount("https://", HTTPAdapter(pool_connections=2, pool_maxsize=pool_size, max_retries=retry))
        # Liveness probes get their own session without retries: a probe must answer within its
        # timeout, and retrying a read timeout on a frozen ComfyUI costs 3 × timeout + backoff.
        self._probe_session = requests.Session()
        self._probe_session.mount("http://", HTTPAdapter(pool_connections=1, pool_maxsize=2, max_retries=0))
        self._probe_session.mount("https://", HTTPAdapter(pool_connections=1, pool_maxsize=2, max_retries=0))
        # POST /prompt, the one call on every job's path, goes to urllib3's pool directly: requests' own
        # layers (request preparation, hooks, cookies, redirects) cost more than ComfyUI takes to answer.
        # No retries: a prompt must never be queued twice.
        self._prompt_pool = urllib3.PoolManager(num_pools=1, maxsize=pool_size, retries=False)

    @property
    def ws_url(self) -> str:
        return "ws" + self.base_url.removeprefix("http") + "/ws"

    def _request(
        self, method: str, path: str, *, timeout: float | None = None, probe: bool = False, **kwargs: Any
    ) -> requests.Response:
        session = self._probe_session if probe else self.session
        try:
            return session.request(method, self.base_url + path, timeout=timeout or self.timeout, **kwargs)
        except requests.RequestException as exc:
            raise ComfyUnavailable(
                f"ComfyUI at {self.base_url} did not answer {method} {path}: {type(exc).__name__}"
            ) from exc

    def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self._request(method, path, **kwargs)
        if response.status_code >= 500:
            raise ComfyUnavailable(f"ComfyUI answered {method} {path} with HTTP {response.status_code}")
        return self._ok(response, method, path).json()

    def system_stats(self, timeout: float | None = None, *, probe: bool = False) -> dict[str, Any]:
        """probe=True: one attempt, no retries, so the call ends within `timeout` (liveness checks)."""
        return self._json("GET", "/system_stats", timeout=timeout, probe=probe)

    def is_up(self, timeout: float = 0.5) -> bool:
        try:
            self.system_stats(timeout=timeout, probe=True)
        except (ComfyUnavailable, ComfyHTTPError, ValueError):
            return False
        return True

    def object_info(self) -> dict[str, Any]:
        return self._json("GET", "/object_info", timeout=max(self.timeout, 30))

    def model_folders(self) -> list[str]:
        return self._json("GET", "/models")

    def _ok(self, response: requests.Response, method: str, path: str) -> requests.Response:
        """The response, or ComfyHTTPError: never requests.HTTPError (an OSError callers mistake for
        'ComfyUI is unreachable')."""
        if response.status_code >= 400:
            raise ComfyHTTPError(method, path, response.status_code, response.text)
        return response

    def models(self, folder: str) -> list[str]:
        """The files ComfyUI lists in `folder` ([] for an unknown folder). ComfyHTTPError when it fails
        to list them (HTTP 500: a directory it scanned is gone)."""
        path = f"/models/{folder}"
        response = self._request("GET", path)
        if response.status_code == 404:
            return []
        return self._ok(response, "GET", path).json()

    def model_lists(self, skip: Collection[str] = ()) -> dict[str, list[str] | None]:
        """Every model folder ComfyUI knows (but those in `skip`: aliases list the same files) with the
        files it lists there, asked in parallel; None for a folder it failed to list (a 500, a bad answer)."""

        def listing(folder: str) -> list[str] | None:
            try:
                return self.models(folder)
            except (ComfyUnavailable, ComfyHTTPError, ValueError):
                return None

        folders = [f for f in self.model_folders() if f not in skip]
        with ThreadPoolExecutor(max_workers=8) as pool:
            return dict(zip(folders, pool.map(listing, folders), strict=True))

    def queue(self, timeout: float | None = None) -> dict[str, Any]:
        """timeout: one attempt within it (no retries), for a ComfyUI that may be too busy to answer."""
        return self._json("GET", "/queue", timeout=timeout, probe=timeout is not None)

    def queued_prompt_ids(self, timeout: float | None = None) -> set[str]:
        q = self.queue(timeout)
        return {item[1] for key in ("queue_running", "queue_pending") for item in q.get(key, [])}

    def history(self, prompt_id: str) -> dict[str, Any] | None:
        return self._json("GET", f"/history/{prompt_id}").get(prompt_id)

    def queue_prompt(
        self, workflow: dict[str, Any], *, prompt_id: str, client_id: str, extra_data: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """POST /prompt. `extra_data`: ComfyUI's per-prompt extras (e.g. `api_key_comfy_org` for API nodes)."""
        # allow_nan=False: NaN is not JSON (ComfyUI's parser would refuse the whole body); the analysis
        # refuses a NaN value before this, so a ValueError here is a bug, not ComfyUI's silence.
        body_dict: dict[str, Any] = {"prompt": workflow, "prompt_id": prompt_id, "client_id": client_id}
        if extra_data:
            body_dict["extra_data"] = extra_data
        payload = json.dumps(body_dict, allow_nan=False)
        try:
            response = self._prompt_pool.request(
                "POST",
                self.base_url + "/prompt",
                body=payload.encode(),
                headers={"Content-Type": "application/json"},
                timeout=self.timeout,
            )
        except (OSError, urllib3.exceptions.HTTPError) as exc:
            raise ComfyUnavailable(
                f"ComfyUI at {self.base_url} did not answer POST /prompt: {type(exc).__name__}"
            ) from exc
        try:
            body = response.json()
        except ValueError:
            text = response.data.decode("utf-8", "replace")
            body = {"error": {"type": "invalid_response", "message": text[:500]}}
        if response.status != 200:
            raise PromptRejected(response.status, body)
        return body

    def interrupt(self, prompt_id: str | None = None) -> None:
        self._request("POST", "/interrupt", json={"prompt_id": prompt_id} if prompt_id else {})

    def delete_queued(self, prompt_ids: list[str]) -> None:
        self._request("POST", "/queue", json={"delete": prompt_ids})

    def delete_history(self, prompt_ids: list[str]) -> None:
        self._request("POST", "/history", json={"delete": prompt_ids})

    def view(self, filename: str, subfolder: str = "", folder_type: str = "output") -> bytes:
        response = self._request(
            "GET",
            "/view",
            params={"filename": filename, "subfolder": subfolder, "type": folder_type},
            timeout=max(self.timeout, 120),
        )
        return self._ok(response, "GET", "/view").content

    def upload_image(
        self, name: str, data: bytes, *, folder_type: str = "input", subfolder: str = "", overwrite: bool = True
    ) -> str:
        """Store a file in ComfyUI's input (or output / temp) folder; the name ComfyUI stored it under."""
        form = {"overwrite": "true" if overwrite else "false", "type": folder_type, "subfolder": subfolder}
        response = self._request("POST", "/upload/image", files={"image": (name, data)}, data=form)
        return self._ok(response, "POST", "/upload/image").json()["name"]

    def close(self) -> None:
        self.session.close()
        self._probe_session.close()
        self._prompt_pool.clear()
