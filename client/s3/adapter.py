"""The S3 adapter of a RunPod network volume: its client, its calls with their errors named, its listing.

RunPod serves each network volume as a bucket (bucket = volume id, region = datacenter id,
endpoint https://s3api-<datacenter>.runpod.io/, object key = path on the volume), with an "S3 API
key" that is not the RunPod API key. The limits below are RunPod's documented ones
(https://docs.runpod.io/serverless/storage/s3-api, "S3 API compatibility reference" and "Known issues and
limitations"); docs/volume.md lists them with their sources. boto3 is imported only inside these
functions (the `volume` extra: `pip install '.[volume]'`); the target and its keys come from
client.config.volume_target.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from client.config import ACCESS_KEY_ENV, SECRET_KEY_ENV, VolumeTarget
from client.errors import UsageError, VolumeError
from workflows.volume_index import VolumeObject

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
