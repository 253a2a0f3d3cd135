"""The launcher's HTTP + WebSocket server: the local ComfyUI editor, with Queue routed to the endpoint.

Everything is passed through to the local ComfyUI (the editor's files, /object_info, uploads, /view,
settings) except what decides where a prompt runs:

    POST /prompt            endpoint mode: judged against the endpoint's diagnose, refused in ComfyUI's
                            error shape, or sent as a generate job (local mode: passed through)
    GET  /queue, /history   the local ComfyUI's entries plus the endpoint jobs'
    POST /queue, /interrupt delete / interrupt: the endpoint job is cancelled on RunPod
    GET  /ws                ComfyUI's socket, with the endpoint jobs' messages added
    /comfy-runpod/state     GET: mode, endpoint, facts, jobs (never the API key)
    /comfy-runpod/mode      POST {"mode": "endpoint" | "local"}
    /comfy-runpod/refresh   POST: fetch the endpoint's diagnose again

Every route exists with and without the editor's /api prefix, as ComfyUI serves them.
"""

from __future__ import annotations

import asyncio
import ipaddress
import itertools
import json
import logging
import threading
import uuid
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from aiohttp import web

from client.errors import ClientError, Unreachable
from client.ui import protocol
from client.ui.facts import FactsCache, client_error, comfy_error, judge_prompt
from client.ui.jobs import JobRunner, RemoteJob, bug
from comfyui_client import ComfyClient
from comfyui_client.errors import ComfyError
from workflows.analysis import shape_findings
from workflows.registry import Registry

log = logging.getLogger("client.ui")
MODES = ("endpoint", "local")
HOP_BY_HOP = frozenset(
    {"connection", "keep-alive", "transfer-encoding", "upgrade", "host", "content-length", "origin", "referer"}
)
MAX_BODY = 512 * 1024 * 1024  # the editor uploads images and videos through /upload
MAX_FINISHED = 1000  # finished endpoint jobs kept for /history (ComfyUI keeps 10000 of its own)


class Launcher:
    """State shared by the routes: the mode, the endpoint jobs, the editor sockets."""

    def __init__(
        self,
        local_url: str,
        runner_factory: Any,
        facts: FactsCache,
        registry: Registry | None,
        *,
        mode: str = "endpoint",
        endpoint_label: str = "",
        listen_host: str = "127.0.0.1",
        max_jobs: int = 4,
    ) -> None:
        self.local_url = local_url.rstrip("/")
        self.local = ComfyClient(self.local_url, timeout=60)
        self.facts, self.registry = facts, registry
        self.mode, self.endpoint_label, self.listen_host = mode, endpoint_label, listen_host
        self.jobs: dict[str, RemoteJob] = {}
        self.sockets: dict[str, set[web.WebSocketResponse]] = {}
        self.numbers = itertools.count(1_000_000)  # above the local ComfyUI's own numbers
        self.pool = ThreadPoolExecutor(max_workers=max_jobs, thread_name_prefix="endpoint-job")
        self.local_remaining = 0
        self.loop: asyncio.AbstractEventLoop | None = None
        self.runner: JobRunner = runner_factory(self.local, self.emit, self.changed)
        self._object_info: Mapping[str, Any] | None = None
        self.http: aiohttp.ClientSession | None = None
        self._sends: set[asyncio.Future[None]] = set()  # held until done: the loop keeps only weak references

    # -- thread-safe notifications from job threads ----------------------------------------

    def emit(self, client_id: str | None, payload: dict[str, Any] | bytes) -> None:
        if self.loop is not None:
            self.loop.call_soon_threadsafe(self._schedule, client_id, payload)

    def _schedule(self, client_id: str | None, payload: dict[str, Any] | bytes) -> None:
        task = asyncio.ensure_future(self._send(client_id, payload))
        self._sends.add(task)
        task.add_done_callback(self._sends.discard)

    def changed(self) -> None:
        self.emit(None, protocol.status(self.remaining()))

    def forget_old(self) -> None:
        """Keep the newest MAX_FINISHED finished jobs: a launcher left running for weeks stays bounded."""
        finished = [j for j in self.all_jobs() if j.done.is_set()]
        for job in finished[: max(0, len(finished) - MAX_FINISHED)]:
            self.jobs.pop(job.prompt_id, None)

    def all_jobs(self) -> list[RemoteJob]:
        return list(self.jobs.values())  # one C-level copy: job threads add to the dict meanwhile

    def active(self) -> list[RemoteJob]:
        return [j for j in self.all_jobs() if not j.done.is_set()]

    def remaining(self) -> int:
        return self.local_remaining + len(self.active())

    async def _send(self, client_id: str | None, payload: dict[str, Any] | bytes) -> None:
        targets = self.sockets.get(client_id or "") or {ws for group in self.sockets.values() for ws in group}
        for ws in list(targets):
            if ws.closed:
                continue
            try:
                if isinstance(payload, bytes):
                    await ws.send_bytes(payload)
                else:
                    await ws.send_str(json.dumps(payload))
            except (ConnectionError, RuntimeError):  # a closing socket: the job goes on regardless
                pass

    # -- facts ------------------------------------------------------------------------------

    def prefetch(self) -> None:
        try:
            self.facts.get()
        except ClientError as exc:  # asked again when a prompt needs them
            log.warning("the endpoint's diagnose could not be fetched: %s", exc.message)
        except Exception:  # a bug: said, and asked again (and answered as CLIENT_BUG) on the first prompt
            log.exception("the endpoint's diagnose could not be read")

    def object_info(self, classes: set[str]) -> Mapping[str, Any]:
        """The local ComfyUI's node definitions (again when the prompt uses a class not seen yet)."""
        if self._object_info is None or not classes <= set(self._object_info):
            self._object_info = self.local.object_info()
        return self._object_info

    def state(self) -> dict[str, Any]:
        facts = self.facts.peek()
        return {
            "mode": self.mode,
            "endpoint": self.endpoint_label,
            "local_comfyui": self.local_url,
            "facts": facts.describe() if facts is not None else None,
            "jobs": [j.describe() for j in self.all_jobs()],
        }

    # -- the prompt -------------------------------------------------------------------------

    def accept(self, body: Mapping[str, Any]) -> tuple[int, dict[str, Any]]:
        """Judge and (when clean) start an endpoint job: (HTTP status, ComfyUI's /prompt answer). Blocking."""
        prompt = body.get("prompt")
        malformed = shape_findings(prompt)  # the body is the browser's: a bad shape is a finding, not a crash
        if malformed or not isinstance(prompt, dict):
            return 400, comfy_error(malformed, prompt if isinstance(prompt, dict) else {})
        classes = {str(n.get("class_type")) for n in prompt.values()}
        try:
            info = self.object_info(classes)
            images = self.runner.input_images(prompt, info)
            findings = judge_prompt(prompt, self.facts.get(), info, self.registry, frozenset(i["name"] for i in images))
        except ClientError as exc:
            return 400, client_error(exc)
        except ComfyError as exc:
            fix = "Is the local ComfyUI (the editor's) still running? See the launcher's output."
            return 400, client_error(Unreachable(f"the local ComfyUI did not answer: {exc}", fix=fix))
        except Exception as exc:  # a bug: the editor still gets an error it shows, with a code, not a bare 500
            log.exception("judging prompt failed in the launcher")
            return 500, client_error(bug(exc))
        if findings:
            log.info("prompt refused before sending: %s", ", ".join(f.code for f in findings))
            return 400, comfy_error(findings, prompt)
        extra = body.get("extra_data") if isinstance(body.get("extra_data"), dict) else {}
        job = RemoteJob(
            prompt_id=str(body.get("prompt_id") or uuid.uuid4()),
            number=next(self.numbers),
            client_id=str(body["client_id"]) if body.get("client_id") else None,
            prompt=prompt,
            extra_data=dict(extra or {}),
            output_nodes=[k for k, v in prompt.items() if (info.get(v["class_type"]) or {}).get("output_node")],
        )
        self.forget_old()
        self.jobs[job.prompt_id] = job
        self.pool.submit(self.runner.run, job, images)
        self.changed()
        return 200, {"prompt_id": job.prompt_id, "number": job.number, "node_errors": {}}

    def cancel(self, prompt_ids: list[str] | None) -> list[dict[str, Any]]:
        """Cancel the named endpoint jobs (all running ones when None). Blocking."""
        chosen = [j for j in self.active() if prompt_ids is None or j.prompt_id in prompt_ids]
        if prompt_ids is None:  # the editor's "cancel current run": the ones a worker has, else all
            chosen = [j for j in chosen if j.executing] or chosen
        return [{"prompt_id": j.prompt_id, **self.runner.cancel(j)} for j in chosen]


# ---------------------------------------------------------------------------------------------
# routes
# ---------------------------------------------------------------------------------------------


def _both(path: str) -> tuple[str, str]:
    return path, "/api" + path


async def _json_body(request: web.Request) -> Any:
    try:
        return await request.json()
    except (ValueError, UnicodeDecodeError):
        return None


def _json(raw: bytes) -> Any:
    try:
        return json.loads(raw) if raw else {}
    except (ValueError, UnicodeDecodeError):
        return None


def answers_to(hostname: str | None, listen_host: str) -> bool:
    """A Host name this launcher serves: a loopback name or address, or the --host it listens on (any
    name when it listens on every address). Another name is DNS rebinding: a site's own name pointed at
    127.0.0.1, whose Origin then matches its Host."""
    if not hostname:
        return False
    if hostname in ("localhost", listen_host.lower()) or listen_host in ("0.0.0.0", "::"):
        return True
    try:
        return ipaddress.ip_address(hostname).is_loopback
    except ValueError:
        return False


def same_origin_only(listen_host: str) -> Any:
    """What ComfyUI's own origin check does, kept here because the proxy can't pass the Origin on: a page
    from another site in the same browser must not queue paid jobs through the launcher. `Origin: null`
    (a sandboxed iframe, a file:// page) is another site too, as ComfyUI counts it."""

    @web.middleware
    async def check(request: web.Request, handler: Any) -> web.StreamResponse:
        host = request.host.lower()
        if not answers_to(urlsplit("//" + host).hostname, listen_host):
            return web.Response(status=403, text="requests for another host name are refused")
        origin = request.headers.get("Origin")
        if origin is not None and urlsplit(origin).netloc.lower() != host:
            return web.Response(status=403, text="cross-origin requests are refused")
        return await handler(request)

    return check


def build_app(launcher: Launcher) -> web.Application:
    """The routes, as closures over the one launcher (long: one short handler per route ComfyUI serves)."""
    app = web.Application(client_max_size=MAX_BODY, middlewares=[same_origin_only(launcher.listen_host)])
    routes = web.RouteTableDef()

    async def forward(request: web.Request, body: bytes | None = None) -> web.Response:
        """Pass a request through to the local ComfyUI and its answer back."""
        assert launcher.http is not None
        headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP_BY_HOP}
        data = body if body is not None else await request.read()
        url = launcher.local_url + request.rel_url.path_qs
        try:
            async with launcher.http.request(request.method, url, headers=headers, data=data) as upstream:
                payload = await upstream.read()
                out = {k: v for k, v in upstream.headers.items() if k.lower() not in HOP_BY_HOP}
                return web.Response(body=payload, status=upstream.status, headers=out)
        except aiohttp.ClientError as exc:
            return web.Response(status=502, text=f"the local ComfyUI at {launcher.local_url} did not answer: {exc}")

    async def upstream_json(request: web.Request) -> Any:
        response = await forward(request)
        try:
            return json.loads(response.body) if response.status == 200 else None  # type: ignore[arg-type]
        except ValueError:
            return None

    for path in _both("/prompt"):

        @routes.post(path)
        async def prompt(request: web.Request) -> web.Response:
            if launcher.mode == "local":
                return await forward(request)
            body = await _json_body(request)  # not a JSON object: judged as no workflow (WORKFLOW_INVALID)
            status, answer = await asyncio.to_thread(launcher.accept, body if isinstance(body, dict) else {})
            return web.json_response(answer, status=status)

    for path in _both("/queue"):

        @routes.get(path)
        async def queue(request: web.Request) -> web.Response:
            local = await upstream_json(request) or {"queue_running": [], "queue_pending": []}
            mine = launcher.active()
            local["queue_running"] = local.get("queue_running", []) + [j.item() for j in mine if j.executing]
            local["queue_pending"] = local.get("queue_pending", []) + [j.item() for j in mine if not j.executing]
            return web.json_response(local)

        @routes.post(path)
        async def queue_post(request: web.Request) -> web.Response:
            raw = await request.read()
            body = _json(raw)
            delete = body.get("delete") if isinstance(body, dict) else None
            ids = [str(i) for i in delete] if isinstance(delete, list) else []
            ours = [i for i in ids if i in launcher.jobs]
            if ours:
                await asyncio.to_thread(launcher.cancel, ours)
            if isinstance(body, dict) and body.get("clear"):
                pending = [j.prompt_id for j in launcher.active() if not j.executing]
                await asyncio.to_thread(launcher.cancel, pending)
            return await forward(request, raw)

    for path in _both("/interrupt"):

        @routes.post(path)
        async def interrupt(request: web.Request) -> web.Response:
            raw = await request.read()
            body = _json(raw)
            wanted = body.get("prompt_id") if isinstance(body, dict) else None
            wanted = str(wanted) if wanted is not None else None
            if wanted is None or wanted in launcher.jobs:
                await asyncio.to_thread(launcher.cancel, [wanted] if wanted else None)
            if wanted is not None and wanted in launcher.jobs:
                return web.Response(status=200)
            return await forward(request, raw)

    for path in _both("/history"):

        @routes.get(path)
        async def history(request: web.Request) -> web.Response:
            local = await upstream_json(request) or {}
            for job in launcher.all_jobs():
                if job.done.is_set():
                    local[job.prompt_id] = job.history()
            return web.json_response(local)

        @routes.get(path + "/{prompt_id}")
        async def history_one(request: web.Request) -> web.Response:
            job = launcher.jobs.get(request.match_info["prompt_id"])
            if job is not None:
                return web.json_response({job.prompt_id: job.history()} if job.done.is_set() else {})
            return await forward(request)

    for path in _both("/ws"):

        @routes.get(path)
        async def ws(request: web.Request) -> web.StreamResponse:
            return await _socket(launcher, request)

    @routes.get("/comfy-runpod/state")
    async def state(request: web.Request) -> web.Response:
        return web.json_response(launcher.state())

    @routes.get("/comfy-runpod/mode")
    async def mode_now(request: web.Request) -> web.Response:
        return web.json_response({"mode": launcher.mode})

    @routes.post("/comfy-runpod/mode")
    async def mode(request: web.Request) -> web.Response:
        body = await _json_body(request)
        wanted = (body or {}).get("mode") if isinstance(body, dict) else request.query.get("mode")
        if wanted not in MODES:
            return web.json_response({"error": f"mode must be one of {', '.join(MODES)}"}, status=400)
        launcher.mode = wanted
        return web.json_response(launcher.state())

    @routes.post("/comfy-runpod/refresh")
    async def refresh(request: web.Request) -> web.Response:
        try:
            await asyncio.to_thread(launcher.facts.get, True)
        except ClientError as exc:
            return web.json_response(client_error(exc), status=502)
        except Exception as exc:
            log.exception("the endpoint's diagnose could not be read")
            return web.json_response(client_error(bug(exc)), status=500)
        return web.json_response(launcher.state())

    app.add_routes(routes)
    app.router.add_route("*", "/{tail:.*}", forward)

    async def start(app: web.Application) -> None:
        launcher.loop = asyncio.get_running_loop()
        launcher.http = aiohttp.ClientSession(auto_decompress=False, timeout=aiohttp.ClientTimeout(total=None))
        if launcher.mode == "endpoint":  # the endpoint's facts, fetched now: ready when Run is first pressed
            threading.Thread(target=launcher.prefetch, name="endpoint-facts", daemon=True).start()

    async def stop(app: web.Application) -> None:
        for group in list(launcher.sockets.values()):
            for sock in list(group):
                await sock.close()
        if launcher.http is not None:
            await launcher.http.close()
        launcher.pool.shutdown(wait=True)  # running jobs finish and save their outputs

    app.on_startup.append(start)
    app.on_shutdown.append(stop)
    return app


async def _socket(launcher: Launcher, request: web.Request) -> web.StreamResponse:
    """The editor's socket: ComfyUI's own (both ways), plus the endpoint jobs' messages.

    Long because the two pumps share the socket pair and the registration by client id: one place."""
    assert launcher.http is not None
    browser = web.WebSocketResponse(max_msg_size=0)
    await browser.prepare(request)
    client_id = request.query.get("clientId") or ""
    url = launcher.local_url.replace("http", "ws", 1) + request.rel_url.path_qs
    try:
        upstream = await launcher.http.ws_connect(url, max_msg_size=0)
    except aiohttp.ClientError:
        await browser.close(message=b"the local ComfyUI does not answer")
        return browser

    def register(cid: str) -> None:
        launcher.sockets.setdefault(cid, set()).add(browser)

    if client_id:
        register(client_id)

    async def down() -> None:
        async for msg in upstream:
            if msg.type == aiohttp.WSMsgType.TEXT:
                text = msg.data
                data = _json(text.encode())
                if isinstance(data, dict) and data.get("type") == "status":
                    info = data.get("data") or {}
                    sid = info.get("sid")
                    if sid and not client_id:
                        register(str(sid))
                    remaining = ((info.get("status") or {}).get("exec_info") or {}).get("queue_remaining")
                    if isinstance(remaining, int):
                        launcher.local_remaining = remaining
                        data["data"]["status"]["exec_info"]["queue_remaining"] = launcher.remaining()
                        text = json.dumps(data)
                await browser.send_str(text)
            elif msg.type == aiohttp.WSMsgType.BINARY:
                await browser.send_bytes(msg.data)
            else:
                break

    async def up() -> None:
        async for msg in browser:
            if msg.type == aiohttp.WSMsgType.TEXT:
                await upstream.send_str(msg.data)
            elif msg.type == aiohttp.WSMsgType.BINARY:
                await upstream.send_bytes(msg.data)
            else:
                break

    tasks = [asyncio.ensure_future(down()), asyncio.ensure_future(up())]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:  # a socket closed mid-send ends its pump with an error: that is the disconnect
            if task.done() and not task.cancelled() and task.exception() is not None:
                log.debug("editor socket %s closed: %r", client_id, task.exception())
        for cid, group in list(launcher.sockets.items()):
            group.discard(browser)
            if not group:
                launcher.sockets.pop(cid, None)
        await upstream.close()
        await browser.close()
    return browser
