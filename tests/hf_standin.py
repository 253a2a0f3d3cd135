"""A local server that answers as Hugging Face's API does, for the files it is given (tests only).

What huggingface_hub reads, as huggingface.co sends it:
- HEAD/GET /{repo}/resolve/{revision}/{path}: LFS files answer 302 to a CDN URL with X-Repo-Commit,
  X-Linked-Etag (the file's sha256, quoted), X-Linked-Size and ETag; git-stored files answer 200 with
  ETag = the git blob id and Content-Length. A gated repository answers 401 with X-Error-Code: GatedRepo
  (403 with a token that has no access); a missing file 404 with X-Error-Code: EntryNotFound, a missing
  repository 401 with RepoNotFound.
- GET /cdn/{sha256}: the bytes (what the 302 points at, on `localhost`: a host other than the Hub's).
"""

from __future__ import annotations

import hashlib
import json
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote

COMMIT = "5f3a1c0e9b7d2a4c6e8f0a1b3c5d7e9f1a2b4c6d"


@dataclass
class HubFile:
    repo: str
    path: str
    data: bytes
    lfs: bool = True

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()

    @property
    def blob_id(self) -> str:
        return hashlib.sha1(b"blob %d\0" % len(self.data) + self.data).hexdigest()


class HubStandIn:
    def __init__(self, files: list[HubFile], gated: tuple[str, ...] = (), token: str | None = None) -> None:
        self.files = {(f.repo, f.path): f for f in files}
        self.gated, self.token = set(gated), token
        self.requests: list[str] = []
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> HubStandIn:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        # one class per server (it closes over the hub): the three routes Hugging Face answers, as it does
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def _send(self, status: int, headers: dict[str, str], body: bytes = b"") -> None:
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                if "Content-Length" not in headers:
                    self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.command != "HEAD" and body:
                    self.wfile.write(body)

            def _error(self, status: int, code: str, message: str) -> None:
                body = json.dumps({"error": message}).encode()
                self._send(
                    status, {"X-Error-Code": code, "X-Error-Message": message, "Content-Type": "application/json"}, body
                )

            def _access(self, repo: str) -> bool:
                if repo not in hub.gated:
                    return True
                auth = self.headers.get("Authorization", "")
                if auth != f"Bearer {hub.token}":
                    status = 403 if auth else 401
                    self._error(
                        status,
                        "GatedRepo",
                        f"Access to model {repo} is restricted. You must have access to it and be "
                        "authenticated to access it. Please log in.",
                    )
                    return False
                return True

            def _resolve(self) -> None:
                hub.requests.append(f"{self.command} {self.path}")
                path = unquote(self.path.split("?", 1)[0])
                if path.startswith("/cdn/"):
                    f = next((f for f in hub.files.values() if f.sha256 == path[5:]), None)
                    if f is None:
                        return self._error(404, "EntryNotFound", "no such object")
                    return self._send(200, {"Content-Type": "application/octet-stream"}, f.data)
                parts = path.lstrip("/").split("/")
                if len(parts) < 5 or parts[2] != "resolve":
                    return self._error(404, "RepoNotFound", "not found")
                repo, file_path = "/".join(parts[:2]), "/".join(parts[4:])
                if not any(r == repo for r, _ in hub.files) and repo not in hub.gated:
                    return self._error(401, "RepoNotFound", f"Repository Not Found for url: {self.path}.")
                if not self._access(repo):
                    return
                f = hub.files.get((repo, file_path))
                if f is None:
                    return self._error(404, "EntryNotFound", f"{file_path} does not exist on main")
                common = {"X-Repo-Commit": COMMIT, "Accept-Ranges": "bytes"}
                if f.lfs:
                    return self._send(
                        302,
                        {
                            **common,
                            # the CDN is another host, as Hugging Face's is: huggingface_hub stops at this
                            # redirect and reads the file's metadata from it (it follows same-host ones)
                            "Location": f"{hub.url.replace('127.0.0.1', 'localhost')}/cdn/{f.sha256}",
                            "X-Linked-Etag": f'"{f.sha256}"',
                            "X-Linked-Size": str(len(f.data)),
                            "ETag": f'"{f.blob_id}"',
                            "Content-Length": "0",
                        },
                    )
                return self._send(200, {**common, "ETag": f'"{f.blob_id}"', "Content-Length": str(len(f.data))}, f.data)

            do_HEAD = do_GET = _resolve

        return Handler
