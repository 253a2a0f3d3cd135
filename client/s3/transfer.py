"""The resumable multipart upload engine of `volume push`: files to S3 in parallel parts, sha256 beside them.

Files up to the part size go up as one PutObject (RunPod: PutObject < 500 MB); larger ones as a
multipart upload with a CRC32 per part, as boto3's upload_file sends them (unless
AWS_REQUEST_CHECKSUM_CALCULATION=when_required). An interruption leaves the multipart upload open on
the server (RunPod keeps its parts in .s3compat_uploads/), so the next run lists it and sends only the
missing parts, and only when every part it holds verifies as the local file's bytes (an upload push
can't vouch for is left alone and named in the item's `left_open`).

An item with `expect_sha256` is hashed in a low-priority thread beside the transfer (HashCache keeps
the digests); its multipart upload is completed only once the sha256 matched, else aborted and the
file refused (PUSH_HASH_MISMATCH). Nothing here deletes an object.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import math
import os
import re
import sys
import threading
import zlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from client.errors import UsageError, VolumeError
from client.s3.adapter import DEFAULT_PART, DEFAULT_WORKERS, MAX_PARTS, PART_MAX, PART_MIN, PUT_OBJECT_MAX, s3_call

HASH_NICE = 10  # the sha256 thread's nice value: it uses the CPU the transfer leaves (see _lower_priority)
ProgressSink = Callable[[int], None]
PartSink = Callable[["PushItem", int], None]


@dataclass(slots=True)
class PushItem:
    """One local file of a push: where it goes and what became of it (planned by client.commands.volume,
    moved by Transfer; `to_dict` is its row in the push report)."""

    local: str
    key: str
    size_bytes: int
    action: str  # "upload" | "present" | "refused"
    verified: str = ""  # "sha256+size" | "size" | "" (not in the registry, --folder)
    code: str | None = None
    message: str | None = None
    fix: str | None = None
    parts: dict[str, int] = field(default_factory=dict)
    replaces: int | None = None  # size of the object an upload replaces (--replace)
    expect_sha256: str | None = None  # checked by the upload before the file becomes visible on the volume
    url: str | None = None  # the registry's download URL, for a refusal's fix
    left_open: list[dict[str, Any]] | None = None  # unfinished uploads of the key push didn't touch or couldn't abort

    def to_dict(self) -> dict[str, Any]:
        shown = (f for f in self.__slots__ if f not in ("expect_sha256", "url"))
        return {k: v for k, v in {f: getattr(self, f) for f in shown}.items() if v not in (None, "", {})}

    def leave_open(self, upload_id: str, parts: int) -> None:
        """Name an unfinished upload of this key that the push leaves on the volume."""
        self.left_open = [*(self.left_open or []), {"upload_id": upload_id, "parts": parts}]

    def refuse_hash(self, digest: str, expected: str, url: str | None = None) -> None:
        self.action, self.code = "refused", "PUSH_HASH_MISMATCH"
        self.message = f"{self.local} has sha256 {digest[:12]}…; the registry expects {expected[:12]}…."
        self.fix = "The file is corrupt or another version: download it again" + (f" from {url}" if url else "")
        self.fix += ", then push."


class HashCache:
    """sha256 of local files by (path, size, mtime): a resumed push of a 7 GB model doesn't hash it again."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._data: dict[str, Any] = {}
        if path is not None and path.is_file():
            try:
                self._data = json.loads(path.read_text())
            except (OSError, ValueError):
                self._data = {}

    def sha256(self, file: Path) -> str:
        st = file.stat()
        hit = self._data.get(str(file))
        if isinstance(hit, dict) and hit.get("size") == st.st_size and hit.get("mtime_ns") == st.st_mtime_ns:
            return str(hit["sha256"])
        with file.open("rb") as fh:
            digest = hashlib.file_digest(fh, "sha256").hexdigest()
        self._data[str(file)] = {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "sha256": digest}
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_suffix(".tmp")
            tmp.write_text(json.dumps(self._data))
            tmp.replace(self.path)
        return digest


def part_size_for(size: int, wanted: int = DEFAULT_PART) -> int:
    """The part size: `wanted`, raised so a file fits in MAX_PARTS, within RunPod's PART_MAX."""
    part = max(wanted, PART_MIN, math.ceil(size / MAX_PARTS))
    if part > PART_MAX:
        raise UsageError(f"a {size:,}-byte file needs parts over RunPod's {PART_MAX:,}-byte limit")
    return part


@dataclass(slots=True, eq=False)  # compared by identity
class _Upload:
    item: PushItem
    part_size: int
    upload_id: str | None = None  # None: one PutObject
    checksum: str | None = None  # the multipart upload's checksum algorithm (CRC32, as boto3's), None: none
    done: dict[int, dict[str, str]] = field(default_factory=dict)  # part number -> ETag (+ its checksum)
    todo: list[int] = field(default_factory=list)
    sending: list[Future[Any]] = field(default_factory=list)  # this upload's part futures not finished yet
    checked: bool = True  # False while the file's sha256 is still being compared with the registry's
    refused: bool = False  # the sha256 didn't match: no more parts, the upload is aborted

    @property
    def total_parts(self) -> int:
        return max(1, math.ceil(self.item.size_bytes / self.part_size))

    @property
    def multipart(self) -> bool:
        return self.item.size_bytes > self.part_size or self.item.size_bytes >= PUT_OBJECT_MAX

    def part_range(self, number: int) -> tuple[int, int]:
        offset = (number - 1) * self.part_size
        return offset, min(self.part_size, self.item.size_bytes - offset)


class Transfer:
    """One push's uploads, run by `run(items)`: the part pool, the sha256 thread, and which future is whose.

    The main thread alone changes an _Upload (the pool's threads only read the file and call S3), so
    the bookkeeping needs no locks: `_begin` queues an item's hash and (unless it must be hashed before
    its first byte) its parts, `_hashed` and `_part_sent` handle each finished future, `_settle` completes
    or aborts an upload once none of its parts is in flight, `_confirm` checks every upload's size.
    """

    def __init__(
        self,
        client: Any,
        bucket: str,
        *,
        part_size: int = DEFAULT_PART,
        workers: int = DEFAULT_WORKERS,
        on_bytes: ProgressSink | None = None,
        on_part: PartSink | None = None,
        hashes: HashCache | None = None,
    ) -> None:
        self.client, self.bucket, self.part_size, self.workers = client, bucket, part_size, workers
        self.sink: ProgressSink = on_bytes or (lambda n: None)
        self.on_part = on_part
        self.hashes = hashes or HashCache(None)
        config = client.meta.config
        self.checksum = "CRC32" if getattr(config, "request_checksum_calculation", "") == "when_supported" else None
        self.started: list[_Upload] = []  # uploads whose parts were queued and not refused
        self.pending: set[Future[Any]] = set()  # every future not handled yet: parts and hashes
        self.part_of: dict[Future[Any], _Upload] = {}
        self.hash_of: dict[Future[Any], _Upload] = {}
        self._pool: ThreadPoolExecutor | None = None

    def run(self, items: Sequence[PushItem]) -> None:
        """Upload the items; on return each started one is on the volume with its size checked ("uploaded")."""
        self._pool = ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="volume-push")
        hasher = ThreadPoolExecutor(max_workers=1, thread_name_prefix="volume-sha256", initializer=_lower_priority)
        try:
            for item in items:
                self._begin(item, hasher)
            while self.pending:
                finished, self.pending = wait(self.pending, return_when=FIRST_COMPLETED)
                for fut in finished:
                    if fut in self.hash_of:
                        self._hashed(self.hash_of.pop(fut), fut.result())
                    else:
                        self._part_sent(fut)
        finally:
            for fut in self.pending:
                fut.cancel()
            hasher.shutdown(wait=True, cancel_futures=True)
            self._pool.shutdown(wait=True, cancel_futures=True)
        self._confirm()

    def _begin(self, item: PushItem, hasher: ThreadPoolExecutor) -> None:
        """Queue the item's sha256 check, and its parts unless it is one PutObject (visible at once: hashed first)."""
        up = _Upload(item, part_size_for(item.size_bytes, self.part_size))
        if item.expect_sha256:
            up.checked = False
            check = hasher.submit(self.hashes.sha256, Path(item.local))
            self.hash_of[check] = up
            self.pending.add(check)
        if not item.expect_sha256 or up.multipart:
            self._start(up)

    def _start(self, up: _Upload) -> None:
        """List or create its multipart upload, then queue the parts the server lacks."""
        assert self._pool is not None
        if up.multipart:
            self._resume(up)
            resumed = sum(up.part_range(n)[1] for n in up.done)
            if resumed:
                self.sink(resumed)
        else:
            up.todo = [1]
        up.item.parts = {"total": up.total_parts, "resumed": len(up.done), "uploaded": 0}
        self.started.append(up)
        for n in up.todo:
            fut = self._pool.submit(self._send, up, n)
            self.part_of[fut] = up
            up.sending.append(fut)
            self.pending.add(fut)
        self._settle(up)

    def _send(self, up: _Upload, number: int) -> tuple[int, dict[str, str] | None]:
        """One part (or the whole file as PutObject), in a pool thread: (part number, what Complete needs)."""
        if up.refused:
            return number, None
        offset, length = up.part_range(number)
        body = _read(up.item.local, offset, length)
        if up.upload_id is None:
            s3_call(self.client.put_object, Bucket=self.bucket, Key=up.item.key, Body=body)
            part: dict[str, str] = {}
        else:
            extra = {"ChecksumAlgorithm": up.checksum} if up.checksum else {}
            response = s3_call(
                self.client.upload_part,
                Bucket=self.bucket,
                Key=up.item.key,
                UploadId=up.upload_id,
                PartNumber=number,
                Body=body,
                **extra,
            )
            part = {"ETag": response["ETag"]}
            if up.checksum:
                part[f"Checksum{up.checksum}"] = response.get(f"Checksum{up.checksum}") or _crc32(body)
        self.sink(length)
        return number, part

    def _hashed(self, up: _Upload, digest: str) -> None:
        """The item's sha256 is known: refuse it on a mismatch, else let its upload complete (or begin)."""
        item = up.item
        if digest != item.expect_sha256:
            self._refuse(up, digest)
            return
        item.verified, up.checked = "sha256+size", True
        if up in self.started:
            self._settle(up)
        else:
            self._start(up)

    def _refuse(self, up: _Upload, digest: str) -> None:
        """A sha256 mismatch: the queued parts are dropped, the upload aborted once none is in flight."""
        item = up.item
        item.refuse_hash(digest, str(item.expect_sha256), item.url)
        up.refused = True
        for queued in [f for f in up.sending if f.cancel()]:
            up.sending.remove(queued)
            self.pending.discard(queued)
            self.part_of.pop(queued)
        if up in self.started:
            self.started.remove(up)
            self._settle(up)

    def _part_sent(self, fut: Future[Any]) -> None:
        up = self.part_of.pop(fut)
        up.sending.remove(fut)
        number, part = fut.result()
        if part is not None:
            up.done[number] = part
            up.item.parts["uploaded"] += 1
            if self.on_part is not None:
                self.on_part(up.item, number)
        self._settle(up)

    def _settle(self, up: _Upload) -> None:
        """Complete a verified multipart upload with every part; abort a refused one once no part is in flight."""
        if up.upload_id is None or up.sending:
            return
        if up.refused:
            self._abort(up)
            up.upload_id = None
        elif up.checked and len(up.done) == up.total_parts:
            self._complete(up)
            up.upload_id = None

    def _confirm(self) -> None:
        """Each started upload's object has the local file's size on the volume: it is "uploaded"."""
        for up in self.started:
            head = s3_call(self.client.head_object, Bucket=self.bucket, Key=up.item.key)
            if int(head.get("ContentLength", -1)) != up.item.size_bytes:
                raise VolumeError(
                    f"{up.item.key} is {head.get('ContentLength')} bytes on the volume after the upload, "
                    f"not {up.item.size_bytes}",
                    code="PUSH_FAILED",
                    fix="Run the push again with --replace.",
                )
            up.item.action = "uploaded"

    # -- the multipart upload on the server: resume, complete, abort ----------------------------

    def _resume(self, up: _Upload) -> None:
        """Continue an unfinished multipart upload of this key whose every part holds the local file's
        bytes, else start one. Any other upload of the key (another machine's, another version's, or one
        whose parts the server gives no MD5 or CRC32 to check) is left as it is and named in `left_open`:
        continuing it would overwrite or complete parts this push can't vouch for."""
        candidates = sorted(self._open_uploads(up), key=lambda c: -len(c[2]))
        for upload_id, algorithm, parts, listed in candidates:
            done = _all_parts_ours(up, parts, algorithm) if len(parts) == listed else None
            if done:
                up.upload_id, up.checksum, up.done = upload_id, algorithm, done
                break
            up.item.leave_open(upload_id, listed)
        else:
            extra = {"ChecksumAlgorithm": self.checksum} if self.checksum else {}
            created = s3_call(self.client.create_multipart_upload, Bucket=self.bucket, Key=up.item.key, **extra)
            up.upload_id, up.checksum = created["UploadId"], self.checksum
        up.todo = [n for n in range(1, up.total_parts + 1) if n not in up.done]

    def _open_uploads(self, up: _Upload) -> Iterator[tuple[str, str | None, dict[int, dict[str, Any]], int]]:
        """(upload id, checksum algorithm, part number -> listed part of the right size, how many parts it
        holds) of each unfinished upload of the item's key whose checksums Complete can be given (none, CRC32)."""
        key = up.item.key
        marker: dict[str, str] = {}
        while True:
            page = s3_call(self.client.list_multipart_uploads, Bucket=self.bucket, Prefix=key, **marker)
            for u in page.get("Uploads") or []:
                algorithm = str(u.get("ChecksumAlgorithm") or "").upper() or None
                if u.get("Key") != key or algorithm not in (None, "CRC32"):
                    continue
                parts, listed_count = self._listed_parts(up, u["UploadId"])
                yield u["UploadId"], algorithm, parts, listed_count
            if not page.get("IsTruncated"):
                return
            marker = {"KeyMarker": page.get("NextKeyMarker", ""), "UploadIdMarker": page.get("NextUploadIdMarker", "")}

    def _listed_parts(self, up: _Upload, upload_id: str) -> tuple[dict[int, dict[str, Any]], int]:
        """(part number -> listed part of the size this push would send, how many parts the upload holds)."""
        parts: dict[int, dict[str, Any]] = {}
        listed_count = 0
        part_marker: dict[str, int] = {}
        while True:
            listed = s3_call(
                self.client.list_parts, Bucket=self.bucket, Key=up.item.key, UploadId=upload_id, **part_marker
            )
            for p in listed.get("Parts") or []:
                listed_count += 1
                number, size = int(p["PartNumber"]), int(p["Size"])
                if number <= up.total_parts and size == up.part_range(number)[1]:
                    parts[number] = p
            if not listed.get("IsTruncated"):
                return parts, listed_count
            part_marker = {"PartNumberMarker": int(listed["NextPartNumberMarker"])}

    def _abort(self, up: _Upload) -> None:
        """Abort a refused file's unfinished upload (push's own: created, or every part verified as ours)."""
        try:
            s3_call(self.client.abort_multipart_upload, Bucket=self.bucket, Key=up.item.key, UploadId=up.upload_id)
        except VolumeError as exc:
            up.item.leave_open(str(up.upload_id), len(up.done))
            up.item.message = (up.item.message or "") + (
                f" Its unfinished upload ({up.upload_id}) could not be aborted ({exc}): nothing is visible, but "
                "its parts take space on the volume until it is (aws s3api abort-multipart-upload)."
            )

    def _complete(self, up: _Upload) -> None:
        parts = [{"PartNumber": n, **up.done[n]} for n in sorted(up.done)]
        s3_call(
            self.client.complete_multipart_upload,
            Bucket=self.bucket,
            Key=up.item.key,
            UploadId=up.upload_id,
            MultipartUpload={"Parts": parts},
        )


def upload(
    client: Any,
    bucket: str,
    items: Sequence[PushItem],
    *,
    part_size: int = DEFAULT_PART,
    workers: int = DEFAULT_WORKERS,
    on_bytes: ProgressSink | None = None,
    on_part: PartSink | None = None,
    hashes: HashCache | None = None,
) -> None:
    """Upload the items in parallel parts; resumable: parts already on the server are not sent again.

    Items with `expect_sha256` are hashed one after the other in a thread beside the transfer. A
    multipart upload is invisible until CompleteMultipartUpload, so its parts go up while the file is
    hashed, and it is completed only once the sha256 matched; a mismatch stops its parts, aborts it
    (AbortMultipartUpload: nothing visible; if the abort fails, `left_open` says so) and refuses the file
    (PUSH_HASH_MISMATCH).
    A file sent as one PutObject (visible at once) is hashed before its first byte is sent.

    Files up to the part size go up as one PutObject (RunPod: PutObject < 500 MB); larger ones as a
    multipart upload with a CRC32 per part, as boto3's upload_file sends them (unless
    AWS_REQUEST_CHECKSUM_CALCULATION=when_required). An interruption leaves the multipart upload open on
    the server (RunPod keeps its parts in .s3compat_uploads/), so the next run lists it and sends only
    the missing parts.
    """
    Transfer(
        client, bucket, part_size=part_size, workers=workers, on_bytes=on_bytes, on_part=on_part, hashes=hashes
    ).run(items)


def _read(path: str, offset: int, length: int) -> bytes:
    with open(path, "rb") as fh:
        fh.seek(offset)
        return fh.read(length)


def _crc32(data: bytes) -> str:
    """S3's ChecksumCRC32 of a part: the big-endian CRC32, base64."""
    return base64.b64encode(zlib.crc32(data).to_bytes(4, "big")).decode()


def _part_kept(path: str, offset: int, length: int, listed: Mapping[str, Any], checksum: str | None) -> dict[str, str]:
    """A part the server holds, as Complete needs it (ETag, checksum), if it is ours, else {}.

    Ours: its ETag (the part's MD5, where the server uses MD5) or its listed CRC32 matches the local
    bytes. A part that neither can vouch for is sent again: a same-sized part of another version of the
    file (say, one refused for its sha256 and interrupted before the abort) must never be completed.
    """
    etag = str(listed["ETag"])
    name = f"Checksum{checksum}" if checksum else ""
    given = str(listed.get(name) or "") if name else ""
    md5 = etag.strip('"').lower() if re.fullmatch(r"[0-9a-fA-F]{32}", etag.strip('"')) else ""
    if not md5 and not given:
        return {}
    data = _read(path, offset, length)
    if md5 and hashlib.md5(data, usedforsecurity=False).hexdigest() != md5:
        return {}
    if given and _crc32(data) != given:
        return {}
    if name and not given:
        given = _crc32(data)
    return {"ETag": etag, name: given} if name else {"ETag": etag}


def _all_parts_ours(
    up: _Upload, parts: Mapping[int, Mapping[str, Any]], algorithm: str | None
) -> dict[int, dict[str, str]] | None:
    """Every listed part as Complete needs it, if each one holds the local bytes; None at the first that doesn't."""
    done: dict[int, dict[str, str]] = {}
    for number, listed in sorted(parts.items()):
        kept = _part_kept(up.item.local, *up.part_range(number), listed, algorithm)
        if not kept:
            return None
        done[number] = kept
    return done


def _lower_priority() -> None:
    """The calling thread yields the CPU to the transfer (Linux: a thread's nice value is its own).

    The sha256 check runs beside the parts' uploads and has until the last part to finish; at equal
    priority it would take CPU from the transfer (and from a local S3 server) when the cores are busy.
    """
    if sys.platform == "linux":
        with contextlib.suppress(OSError):  # not allowed here: the check only runs at the usual priority
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), HASH_NICE)
