"""`volume check | ls | push`: a RunPod network volume over its S3-compatible API — no worker, no GPU.

RunPod serves each network volume as a bucket (bucket = volume id, region = datacenter id,
endpoint https://s3api-<datacenter>.runpod.io/, object key = path on the volume), with an "S3 API
key" that is not the RunPod API key. The limits below are RunPod's documented ones
(https://docs.runpod.io/serverless/storage/s3-api, "S3 API compatibility reference" and "Known issues and
limitations"); docs/volume.md lists them with their sources.

The judgement is the worker's: workflows.volume_index turns the listing into the ModelIndex the
worker would build and workflows.analysis judges it. Nothing here deletes an object (the only
removal: AbortMultipartUpload of push's own upload of a file whose sha256 is refused); an object is
replaced only with --replace. boto3 is imported only inside these commands (the `volume` extra:
`pip install '.[volume]'`).
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
import time
import zlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from client import redact
from client.errors import EXIT_FAILED, EXIT_OK, ConfigError, UsageError, VolumeError
from workflows.models import MODEL_EXTENSIONS, MODEL_FOLDERS, VOLUME_LAYOUTS, canonical_folder
from workflows.registry import ModelSpec, Registry
from workflows.volume_index import SCANNED_DIRS, VolumeObject, is_model_key, judge_volume, layouts_present, place

MB = 1000**2
MiB = 1024**2
# RunPod's S3 API: "PutObject ... Upload objects (<500MB)" and "Files larger than 500MB must be
# uploaded using multipart uploads"; "The maximum size for a single part of a multipart upload is 500MB".
PUT_OBJECT_MAX = 500 * MB
PART_MAX = 500 * MB
MAX_PARTS = 10_000  # S3's own limit (RunPod documents none; 4 TB / 10,000 parts = 400 MB, under PART_MAX)
PART_MIN = 5 * MiB  # S3's minimum for all but the last part: RunPod doesn't enforce it, other servers do
DEFAULT_PART = 16 * MiB  # 10 x 16 MiB in flight: 160 MiB of memory; 4 TB still fits (parts grow)
DEFAULT_WORKERS = 10
# RunPod recommends standard retries with AWS_MAX_ATTEMPTS >= 10 against 502s, and a long read timeout
# for CompleteMultipartUpload of large files (10 GB+).
MAX_ATTEMPTS = 10
READ_TIMEOUT_S = 7200
LIST_ATTEMPTS = 3
HASH_NICE = 10  # the sha256 thread's nice value: it uses the CPU the transfer leaves (see _lower_priority)

ACCESS_KEY_ENV = ("RUNPOD_S3_ACCESS_KEY", "AWS_ACCESS_KEY_ID")
SECRET_KEY_ENV = ("RUNPOD_S3_SECRET_KEY", "AWS_SECRET_ACCESS_KEY")
VOLUME_ID_ENV = "RUNPOD_NETWORK_VOLUME_ID"
DATACENTER_ENV = "RUNPOD_DATACENTER_ID"


# ---------------------------------------------------------------------------------------------
# Target and S3 client
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class VolumeTarget:
    volume_id: str
    datacenter: str
    endpoint_url: str
    access_key: str = field(repr=False)
    secret_key: str = field(repr=False)

    def describe(self) -> dict[str, str]:
        """How the target is shown (never with the keys)."""
        return {"id": self.volume_id, "datacenter": self.datacenter, "endpoint": self.endpoint_url}


def endpoint_for(datacenter: str) -> str:
    return f"https://s3api-{datacenter.lower()}.runpod.io/"


def volume_target(
    volume_id: str | None, datacenter: str | None, endpoint_url: str | None, env: Mapping[str, str]
) -> VolumeTarget:
    """Flags over environment; the keys only from the environment (a flag would land in shell history)."""
    volume_id = volume_id or env.get(VOLUME_ID_ENV) or ""
    datacenter = datacenter or env.get(DATACENTER_ENV) or ""
    if not re.fullmatch(r"[A-Za-z0-9_-]{1,128}", volume_id):
        raise UsageError(
            "--volume-id is required: the network volume's id (RunPod console > Storage)"
            if not volume_id
            else f"volume id {volume_id[:40]!r} has unexpected characters",
            code="VOLUME_ID_INVALID",
        )
    if not re.fullmatch(r"[A-Za-z]{2,4}(-[A-Za-z0-9]{1,8}){1,3}", datacenter):
        raise UsageError(
            "--datacenter is required: the volume's datacenter id, e.g. EU-RO-1"
            if not datacenter
            else f"datacenter {datacenter[:40]!r} is not a datacenter id like EU-RO-1",
            code="VOLUME_ID_INVALID",
        )
    if endpoint_url and not re.match(r"^https?://[^\s/]+", endpoint_url):
        raise UsageError(f"--endpoint-url must be an http(s) URL, got {endpoint_url[:80]!r}")
    access = next((env[k] for k in ACCESS_KEY_ENV if env.get(k)), "")
    secret = next((env[k] for k in SECRET_KEY_ENV if env.get(k)), "")
    redact.register(access)
    redact.register(secret)
    if not access or not secret:
        raise ConfigError(
            "no S3 API key for the network volume",
            code="VOLUME_NO_KEYS",
            fix=f"Export {ACCESS_KEY_ENV[0]} (user_…) and {SECRET_KEY_ENV[0]} (rps_…) from RunPod console > "
            "Settings > S3 API Keys (not the RunPod API key).",
        )
    return VolumeTarget(volume_id, datacenter.upper(), endpoint_url or endpoint_for(datacenter), access, secret)


def s3_client(target: VolumeTarget, workers: int = DEFAULT_WORKERS, attempts: int = MAX_ATTEMPTS) -> Any:
    """A boto3 S3 client for the volume: path-style, RunPod's retry advice, checksums only when required.

    attempts: RunPod's advice (10) for transfers; `check` and `ls` use fewer, so that a wrong
    datacenter or a network outage is named in seconds instead of after minutes of backoff.
    """
    try:
        import boto3
        from botocore.config import Config
    except ImportError:
        raise UsageError(
            "the volume commands need boto3",
            code="VOLUME_NEEDS_BOTO3",
            fix="In your comfy-runpod checkout: pip install '.[volume]' (adds boto3; comfy-runpod is not on PyPI).",
        ) from None
    config = Config(
        region_name=target.datacenter,
        signature_version="s3v4",
        s3={"addressing_style": "path"},
        retries={"total_max_attempts": attempts, "mode": "standard"},
        connect_timeout=10,
        read_timeout=READ_TIMEOUT_S,
        max_pool_connections=max(10, workers + 2),
        # botocore's default integrity protection stays on: a CRC32 of every part, checked by the server,
        # and no second SHA-256 pass over the payload for the signature. The AWS CLI and boto3 defaults
        # are what RunPod's docs use; for a server that refuses the checksum trailers, the standard
        # AWS_REQUEST_CHECKSUM_CALCULATION=when_required turns them off (botocore reads it).
    )
    return boto3.session.Session().client(
        "s3",
        endpoint_url=target.endpoint_url,
        aws_access_key_id=target.access_key,
        aws_secret_access_key=target.secret_key,
        config=config,
    )


def s3_call(fn: Callable[..., Any], **kwargs: Any) -> Any:
    """One S3 call; botocore's exceptions become VolumeError with a code and a fix."""
    from botocore.exceptions import BotoCoreError, EndpointConnectionError
    from botocore.exceptions import ClientError as S3Error

    try:
        return fn(**kwargs)
    except EndpointConnectionError as exc:
        raise VolumeError(
            f"cannot reach the S3 endpoint: {exc}",
            code="VOLUME_UNREACHABLE",
            fix="Check --datacenter: the volume's datacenter must offer the S3 API (EUR-IS-1, EU-RO-1, EU-CZ-1, "
            "US-KS-2 when last checked; docs/volume.md, 'Which datacenters offer the S3 API', and "
            "https://docs.runpod.io/serverless/storage/s3-api), and your network.",
        ) from None
    except S3Error as exc:
        err = exc.response.get("Error") or {}
        code, status = str(err.get("Code") or ""), exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        message = f"{code or status}: {err.get('Message') or exc}"
        if code in ("InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied") or status in (401, 403):
            raise VolumeError(
                message,
                code="VOLUME_AUTH_FAILED",
                fix=f"Check {ACCESS_KEY_ENV[0]} / {SECRET_KEY_ENV[0]}: an S3 API key (user_… / rps_…) of the "
                "account that owns the volume; and your clock (RunPod rejects requests over 1 hour off).",
            ) from None
        if code == "NoSuchBucket" or (status == 404 and "Key" not in kwargs):
            raise VolumeError(
                message,
                code="VOLUME_NOT_FOUND",
                fix="Check --volume-id and --datacenter: the volume must live in that datacenter.",
            ) from None
        raise VolumeError(message, code="VOLUME_S3_ERROR", fix="Retry; if it persists see docs/volume.md.") from None
    except BotoCoreError as exc:
        raise VolumeError(
            f"{type(exc).__name__}: {exc}", code="VOLUME_S3_ERROR", fix="Retry; see docs/volume.md."
        ) from None


def list_objects(client: Any, bucket: str, prefix: str = "") -> list[VolumeObject]:
    """Every object under `prefix`, paging ListObjectsV2 (1,000 keys a page)."""
    objects: list[VolumeObject] = []
    token: str | None = None
    seen: set[str] = set()
    while True:
        kwargs: dict[str, Any] = {"Bucket": bucket, "Prefix": prefix}
        if token:
            kwargs["ContinuationToken"] = token
        page = s3_call(client.list_objects_v2, **kwargs)
        objects += [VolumeObject(o["Key"], int(o.get("Size") or 0)) for o in page.get("Contents") or []]
        if not page.get("IsTruncated"):
            return objects
        token = page.get("NextContinuationToken")
        if not token or token in seen:
            # RunPod documents "The same next token was received twice" while it computes checksums
            # of files written outside the S3 API (large directories, first listing).
            raise VolumeError(
                "the volume listing repeated a page token (RunPod is still computing checksums of files "
                "written outside the S3 API)",
                code="VOLUME_LIST_FAILED",
                fix="Wait a few minutes and run the command again; the second listing is fast.",
            )
        seen.add(token)


# ---------------------------------------------------------------------------------------------
# check and ls
# ---------------------------------------------------------------------------------------------


def check(
    client: Any, target: VolumeTarget, registry: Registry, workflows: Sequence[str] = ()
) -> tuple[dict[str, Any], int]:
    """The volume judged against the registry (the selected workflows, else all): (report, exit code)."""
    unknown = [w for w in workflows if w not in registry.entries]
    if unknown:
        raise UsageError(
            f"no registered workflow {unknown[0]!r} (known: {', '.join(sorted(registry.entries))})",
            code="WORKFLOW_NOT_FOUND",
        )
    t0 = time.perf_counter()
    objects = list_objects(client, target.volume_id)
    listed = time.perf_counter()
    report = judge_volume(objects, registry, list(workflows) or None)
    done = time.perf_counter()
    data = {
        "volume": target.describe(),
        "objects": len(objects),
        "total_bytes": sum(o.size_bytes for o in objects),
        **report,
        "timings": {"list_ms": round((listed - t0) * 1000, 1), "analysis_ms": round((done - listed) * 1000, 1)},
    }
    return data, EXIT_OK if report["ok"] else EXIT_FAILED


def ls(client: Any, target: VolumeTarget, prefix: str = "") -> dict[str, Any]:
    """Every object under `prefix` with its size, and the total per top-level directory."""
    objects = list_objects(client, target.volume_id, prefix)
    files = [o for o in objects if not o.key.endswith("/")]
    dirs: dict[str, int] = {}
    for o in files:
        rel = o.key[len(prefix) :].lstrip("/")
        top = rel.split("/", 1)[0] + ("/" if "/" in rel else "")
        dirs[top] = dirs.get(top, 0) + o.size_bytes
    return {
        "volume": target.describe(),
        "prefix": prefix,
        "files": len(files),
        "total_bytes": sum(o.size_bytes for o in files),
        "top_level": dict(sorted(dirs.items())),
        "objects": [{"key": o.key, "size_bytes": o.size_bytes} for o in sorted(objects, key=lambda o: o.key)],
    }


# ---------------------------------------------------------------------------------------------
# push: plan (pure apart from hashing local files) and upload
# ---------------------------------------------------------------------------------------------


@dataclass(slots=True)
class PushItem:
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


def local_files(paths: Sequence[str]) -> list[Path]:
    """Files named, and model files below directories named (sorted, once each)."""
    found: dict[Path, None] = {}
    for raw in paths:
        path = Path(raw).expanduser()
        if path.is_file():
            found[path.resolve()] = None
        elif path.is_dir():
            for file in sorted(path.rglob("*")):
                if file.is_file() and file.suffix.lower() in MODEL_EXTENSIONS and not file.name.startswith("."):
                    found[file.resolve()] = None
        else:
            raise UsageError(f"{raw}: no such file or directory", code="PUSH_PATH_MISSING")
    return list(found)


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


def _specs_by_basename(registry: Registry, workflows: Sequence[str]) -> dict[str, list[ModelSpec]]:
    out: dict[str, list[ModelSpec]] = {}
    for wid in workflows or sorted(registry.entries):
        for spec in registry.entries[wid].models:
            group = out.setdefault(spec.name.rsplit("/", 1)[-1], [])
            if all((s.folder, s.name) != (spec.folder, spec.name) for s in group):
                group.append(spec)
    return out


def plan_push(
    files: Sequence[Path],
    objects: Sequence[VolumeObject],
    registry: Registry,
    *,
    workflows: Sequence[str] = (),
    layout: str | None = None,
    folder: str | None = None,
    replace: bool = False,
    hashes: HashCache | None = None,
) -> tuple[list[PushItem], str]:
    """What a push would do with each local file, checked against the registry (name, size, place) before a byte moves.

    hashes None: the sha256 checks are left to `upload` (item.expect_sha256), which runs them beside
    the transfer, each before that file becomes visible on the volume.
    """
    layout = layout or next(iter(layouts_present([o for o in objects if is_model_key(o.key)])), VOLUME_LAYOUTS[0])
    remote = {o.key: o.size_bytes for o in objects}
    seen_at: dict[tuple[str, str], list[str]] = {}  # (folder, name) ComfyUI would list -> keys
    for o in objects:
        if is_model_key(o.key):
            f, name, scanned = place(o.key)
            if scanned:
                seen_at.setdefault((f, name), []).append(o.key)
    specs = _specs_by_basename(registry, workflows)
    items: list[PushItem] = []
    for file in files:
        size = file.stat().st_size
        matches = specs.get(file.name, [])
        if not matches:
            if folder is None:
                items.append(
                    PushItem(
                        str(file),
                        "",
                        size,
                        "refused",
                        code="PUSH_NOT_IN_REGISTRY",
                        message=f"{file.name} is not a model of the selected registry workflows, so its place "
                        "and checksum are unknown.",
                        fix="Pass --folder <model folder> (e.g. loras) to upload it unchecked, or add it to the "
                        "workflow's registry entry with size_bytes and sha256.",
                    )
                )
                continue
            key = f"{layout}/{folder}/{file.name}"
            listed = seen_at.get((canonical_folder(folder), file.name))
            items.append(_unregistered(file, key, size, remote, listed, replace))
            continue
        for spec in matches:
            items.append(_registered(file, size, spec, layout, remote, seen_at, replace, hashes))
    # The same destination twice (two local copies of one model): keep the first.
    unique: dict[str, PushItem] = {}
    for item in items:
        if item.key and item.key in unique and unique[item.key].action != "refused":
            continue
        unique[item.key or item.local] = item
    return list(unique.values()), layout


def _unregistered(
    file: Path, key: str, size: int, remote: Mapping[str, int], listed: list[str] | None, replace: bool
) -> PushItem:
    for existing in [key, *(listed or [])]:
        if remote.get(existing) == size:
            return PushItem(str(file), existing, size, "present")
    item = PushItem(str(file), key, size, "upload")
    if key in remote:
        if not replace:
            return _would_replace(item, remote[key], size)
        item.replaces = remote[key]
    return item


def _would_replace(item: PushItem, existing: int, want: int) -> PushItem:
    item.action, item.code = "refused", "PUSH_WOULD_REPLACE"
    item.message = f"{item.key} exists on the volume with {existing:,} bytes, not {want:,} (an interrupted copy?)."
    item.fix = "Pass --replace to overwrite it with the local file."
    return item


def _registered(
    file: Path,
    size: int,
    spec: ModelSpec,
    layout: str,
    remote: Mapping[str, int],
    seen_at: Mapping[tuple[str, str], list[str]],
    replace: bool,
    hashes: HashCache | None,
) -> PushItem:
    key = f"{layout}/{spec.folder}/{spec.name}"
    want = spec.size_bytes if spec.size_bytes is not None else size
    for existing in seen_at.get((spec.folder, spec.name), []):
        if remote[existing] == want:
            return PushItem(str(file), existing, size, "present", "size")
    if spec.size_bytes is not None and size != spec.size_bytes:
        return PushItem(
            str(file),
            key,
            size,
            "refused",
            code="PUSH_SIZE_MISMATCH",
            message=f"{file} is {size:,} bytes; the registry expects {spec.size_bytes:,} for {spec.name} "
            "(truncated download?).",
            fix="Download it again" + (f" from {spec.url}" if spec.url else "") + ", then push.",
        )
    verified = "size" if spec.size_bytes is not None else ""
    if spec.sha256 and hashes is not None:
        digest = hashes.sha256(file)
        if digest != spec.sha256:
            refused = PushItem(str(file), key, size, "upload")
            refused.refuse_hash(digest, spec.sha256, spec.url)
            return refused
        verified = "sha256+size"
    item = PushItem(str(file), key, size, "upload", verified)
    if spec.sha256 and hashes is None:
        item.expect_sha256, item.url = spec.sha256, spec.url
    if key in remote:
        if not replace:
            return _would_replace(item, remote[key], want)
        item.replaces = remote[key]
    return item


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


def _resume(client: Any, bucket: str, up: _Upload, checksum: str | None) -> None:
    """Continue an unfinished multipart upload of this key whose every part holds the local file's
    bytes, else start one. Any other upload of the key (another machine's, another version's, or one
    whose parts the server gives no MD5 or CRC32 to check) is left as it is and named in `left_open`:
    continuing it would overwrite or complete parts this push can't vouch for."""
    candidates = sorted(_open_uploads(client, bucket, up), key=lambda c: -len(c[2]))
    for upload_id, algorithm, parts, listed in candidates:
        done = _all_parts_ours(up, parts, algorithm) if len(parts) == listed else None
        if done:
            up.upload_id, up.checksum, up.done = upload_id, algorithm, done
            break
        up.item.leave_open(upload_id, listed)
    else:
        extra = {"ChecksumAlgorithm": checksum} if checksum else {}
        up.upload_id = s3_call(client.create_multipart_upload, Bucket=bucket, Key=up.item.key, **extra)["UploadId"]
        up.checksum = checksum
    up.todo = [n for n in range(1, up.total_parts + 1) if n not in up.done]


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


def _open_uploads(
    client: Any, bucket: str, up: _Upload
) -> Iterator[tuple[str, str | None, dict[int, dict[str, Any]], int]]:
    """(upload id, checksum algorithm, part number -> listed part of the right size, how many parts it
    holds) of each unfinished upload of the item's key whose checksums Complete can be given (none, CRC32)."""
    key = up.item.key
    marker: dict[str, str] = {}
    while True:
        page = s3_call(client.list_multipart_uploads, Bucket=bucket, Prefix=key, **marker)
        for u in page.get("Uploads") or []:
            algorithm = str(u.get("ChecksumAlgorithm") or "").upper() or None
            if u.get("Key") != key or algorithm not in (None, "CRC32"):
                continue
            parts: dict[int, dict[str, Any]] = {}
            listed_count = 0
            part_marker: dict[str, int] = {}
            while True:
                listed = s3_call(client.list_parts, Bucket=bucket, Key=key, UploadId=u["UploadId"], **part_marker)
                for p in listed.get("Parts") or []:
                    listed_count += 1
                    number, size = int(p["PartNumber"]), int(p["Size"])
                    if number <= up.total_parts and size == up.part_range(number)[1]:
                        parts[number] = p
                if not listed.get("IsTruncated"):
                    break
                part_marker = {"PartNumberMarker": int(listed["NextPartNumberMarker"])}
            yield u["UploadId"], algorithm, parts, listed_count
        if not page.get("IsTruncated"):
            return
        marker = {"KeyMarker": page.get("NextKeyMarker", ""), "UploadIdMarker": page.get("NextUploadIdMarker", "")}


ProgressSink = Callable[[int], None]


def upload(
    client: Any,
    bucket: str,
    items: Sequence[PushItem],
    *,
    part_size: int = DEFAULT_PART,
    workers: int = DEFAULT_WORKERS,
    on_bytes: ProgressSink | None = None,
    on_part: Callable[[PushItem, int], None] | None = None,
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
    sink: ProgressSink = on_bytes or (lambda n: None)
    checksum = "CRC32" if getattr(client.meta.config, "request_checksum_calculation", "") == "when_supported" else None
    uploads: list[_Upload] = []
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="volume-push")
    hasher = ThreadPoolExecutor(max_workers=1, thread_name_prefix="volume-sha256", initializer=_lower_priority)
    pending: set[Future[Any]] = set()
    parts_of: dict[Future[Any], _Upload] = {}
    checks: dict[Future[str], _Upload] = {}

    def start(up: _Upload) -> None:
        """List or create its multipart upload, then queue the parts the server lacks."""
        if up.multipart:
            _resume(client, bucket, up, checksum)
            resumed = sum(up.part_range(n)[1] for n in up.done)
            if resumed:
                sink(resumed)
        else:
            up.todo = [1]
        up.item.parts = {"total": up.total_parts, "resumed": len(up.done), "uploaded": 0}
        uploads.append(up)
        for n in up.todo:
            fut = pool.submit(send, up, n)
            parts_of[fut] = up
            up.sending.append(fut)
            pending.add(fut)
        settle(up)

    def send(up: _Upload, number: int) -> tuple[_Upload, int, dict[str, str] | None]:
        if up.refused:
            return up, number, None
        offset, length = up.part_range(number)
        body = _read(up.item.local, offset, length)
        if up.upload_id is None:
            s3_call(client.put_object, Bucket=bucket, Key=up.item.key, Body=body)
            part: dict[str, str] = {}
        else:
            extra = {"ChecksumAlgorithm": up.checksum} if up.checksum else {}
            response = s3_call(
                client.upload_part,
                Bucket=bucket,
                Key=up.item.key,
                UploadId=up.upload_id,
                PartNumber=number,
                Body=body,
                **extra,
            )
            part = {"ETag": response["ETag"]}
            if up.checksum:
                part[f"Checksum{up.checksum}"] = response.get(f"Checksum{up.checksum}") or _crc32(body)
        sink(length)
        return up, number, part

    def settle(up: _Upload) -> None:
        """Complete a verified multipart upload with every part; abort a refused one once no part is in flight."""
        if up.upload_id is None or up.sending:
            return
        if up.refused:
            _abort(client, bucket, up)
            up.upload_id = None
        elif up.checked and len(up.done) == up.total_parts:
            _complete(client, bucket, up)
            up.upload_id = None

    hashes = hashes or HashCache(None)
    try:
        for item in items:
            up = _Upload(item, part_size_for(item.size_bytes, part_size))
            if item.expect_sha256:
                up.checked = False
                check = hasher.submit(hashes.sha256, Path(item.local))
                checks[check] = up
                pending.add(check)
            if not item.expect_sha256 or up.multipart:
                start(up)
        while pending:
            finished, pending = wait(pending, return_when=FIRST_COMPLETED)
            for fut in finished:
                if fut in checks:
                    up = checks.pop(fut)
                    digest, item = fut.result(), up.item
                    if digest != item.expect_sha256:
                        item.refuse_hash(digest, str(item.expect_sha256), item.url)
                        up.refused = True
                        for queued in [f for f in up.sending if f.cancel()]:
                            up.sending.remove(queued)
                            pending.discard(queued)
                            parts_of.pop(queued)
                        if up in uploads:
                            uploads.remove(up)
                            settle(up)
                        continue
                    item.verified, up.checked = "sha256+size", True
                    if up in uploads:
                        settle(up)
                    else:
                        start(up)
                    continue
                up = parts_of.pop(fut)
                up.sending.remove(fut)
                _, number, part = fut.result()
                if part is not None:
                    up.done[number] = part
                    up.item.parts["uploaded"] += 1
                    if on_part is not None:
                        on_part(up.item, number)
                settle(up)
    finally:
        for fut in pending:
            fut.cancel()
        hasher.shutdown(wait=True, cancel_futures=True)
        pool.shutdown(wait=True, cancel_futures=True)
    for up in uploads:
        head = s3_call(client.head_object, Bucket=bucket, Key=up.item.key)
        if int(head.get("ContentLength", -1)) != up.item.size_bytes:
            raise VolumeError(
                f"{up.item.key} is {head.get('ContentLength')} bytes on the volume after the upload, "
                f"not {up.item.size_bytes}",
                code="PUSH_FAILED",
                fix="Run the push again with --replace.",
            )
        up.item.action = "uploaded"


def _lower_priority() -> None:
    """The calling thread yields the CPU to the transfer (Linux: a thread's nice value is its own).

    The sha256 check runs beside the parts' uploads and has until the last part to finish; at equal
    priority it would take CPU from the transfer (and from a local S3 server) when the cores are busy.
    """
    if sys.platform == "linux":
        with contextlib.suppress(OSError):  # not allowed here: the check only runs at the usual priority
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), HASH_NICE)


def _abort(client: Any, bucket: str, up: _Upload) -> None:
    """Abort a refused file's unfinished upload (push's own: created, or every part verified as ours)."""
    try:
        s3_call(client.abort_multipart_upload, Bucket=bucket, Key=up.item.key, UploadId=up.upload_id)
    except VolumeError as exc:
        up.item.leave_open(str(up.upload_id), len(up.done))
        up.item.message = (up.item.message or "") + (
            f" Its unfinished upload ({up.upload_id}) could not be aborted ({exc}): nothing is visible, but "
            "its parts take space on the volume until it is (aws s3api abort-multipart-upload)."
        )


def _complete(client: Any, bucket: str, up: _Upload) -> None:
    parts = [{"PartNumber": n, **up.done[n]} for n in sorted(up.done)]
    s3_call(
        client.complete_multipart_upload,
        Bucket=bucket,
        Key=up.item.key,
        UploadId=up.upload_id,
        MultipartUpload={"Parts": parts},
    )


def push(
    client: Any,
    target: VolumeTarget,
    registry: Registry,
    paths: Sequence[str],
    *,
    workflows: Sequence[str] = (),
    layout: str | None = None,
    folder: str | None = None,
    dry_run: bool = False,
    replace: bool = False,
    part_size: int = DEFAULT_PART,
    workers: int = DEFAULT_WORKERS,
    hash_cache: Path | None = None,
    progress: Callable[[int], ProgressSink] | None = None,
    on_part: Callable[[PushItem, int], None] | None = None,
) -> tuple[dict[str, Any], int]:
    """Plan (registry checks first), then upload what is missing, each file's sha256 checked before its
    upload completes. (report, exit code: 1 if any refused)."""
    unknown = [w for w in workflows if w not in registry.entries]
    if unknown:
        raise UsageError(f"no registered workflow {unknown[0]!r}", code="WORKFLOW_NOT_FOUND")
    if layout is not None and layout not in VOLUME_LAYOUTS:
        raise UsageError(f"--layout must be one of {', '.join(VOLUME_LAYOUTS)}")
    if folder is not None and folder not in SCANNED_DIRS:
        raise UsageError(f"--folder {folder!r} is not a folder the image scans ({', '.join(MODEL_FOLDERS)})")
    if not PART_MIN <= part_size <= PART_MAX:
        raise UsageError(f"the part size must be between {PART_MIN:,} and {PART_MAX:,} bytes")
    t0 = time.perf_counter()
    files = local_files(paths)
    objects = list_objects(client, target.volume_id)
    items, chosen = plan_push(
        files,
        objects,
        registry,
        workflows=workflows,
        layout=layout,
        folder=folder,
        replace=replace,
        hashes=HashCache(hash_cache) if dry_run else None,
    )
    planned = time.perf_counter()
    todo = [i for i in items if i.action == "upload"]
    if todo and not dry_run:
        sink = progress(sum(i.size_bytes for i in todo)) if progress else None
        upload(
            client,
            target.volume_id,
            todo,
            part_size=part_size,
            workers=workers,
            on_bytes=sink,
            on_part=on_part,
            hashes=HashCache(hash_cache),
        )
    elapsed = time.perf_counter() - planned
    todo = [i for i in items if i.action in ("upload", "uploaded")]
    to_send = sum(i.size_bytes for i in todo)
    refused = [i for i in items if i.action == "refused"]
    data = {
        "volume": target.describe(),
        "dry_run": dry_run,
        "layout": chosen,
        "items": [i.to_dict() for i in items],
        "summary": {
            "files": len(items),
            "upload": len(todo),
            "upload_bytes": to_send,
            "present": sum(i.action == "present" for i in items),
            "refused": len(refused),
        },
        "timings": {
            "plan_s": round(planned - t0, 3),
            "upload_s": round(elapsed, 3) if todo and not dry_run else 0.0,
            "rate_mb_s": round(to_send / MB / elapsed, 1) if todo and not dry_run and elapsed > 0 else None,
        },
    }
    return data, EXIT_FAILED if refused else EXIT_OK


def env_snapshot() -> Mapping[str, str]:
    """The process environment, read here once for the volume commands (the keys live only in it)."""
    return os.environ


def load_volume_report(path: str) -> dict[str, Any]:
    """A saved `volume check --json` (the envelope or its result), for `diagnose --volume-report`."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise UsageError(f"--volume-report {path}: {exc}", code="VOLUME_REPORT_INVALID") from None
    data = data.get("result", data) if isinstance(data, dict) else None
    if not isinstance(data, dict) or not isinstance(data.get("models"), dict):
        raise UsageError(
            f"--volume-report {path} is not the output of `volume check --json`", code="VOLUME_REPORT_INVALID"
        )
    return data
