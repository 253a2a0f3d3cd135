"""Find the files a prompt produced, describe them, and deliver them as base64 or presigned URLs."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pybase64

from workflows.errors import JobError
from workflows.outputs import output_refs
from workflows.responses import describe_output


@dataclass(slots=True)
class OutputFile:
    node_id: str
    kind: str
    filename: str
    subfolder: str
    mime: str
    path: Path
    size_bytes: int
    meta: dict[str, Any]
    source: str = "output"  # ComfyUI's directory: output | temp | input

    def describe(self) -> dict[str, Any]:
        return describe_output(self.node_id, self.kind, self.filename, self.mime, self.size_bytes, self.meta)


def _inside(base: Path, subfolder: str, filename: str) -> Path | None:
    path = (base / subfolder / filename).resolve()
    return path if path.is_relative_to(base.resolve()) else None


def iter_output_files(outputs: dict[str, dict[str, Any]], dirs: dict[str, Path]) -> Iterator[OutputFile]:
    for ref in output_refs(outputs):
        base = dirs.get(ref.type)
        path = _inside(base, ref.subfolder, ref.filename) if base else None
        if path is None or not path.is_file():
            continue
        yield OutputFile(
            ref.node_id, ref.kind, ref.filename, ref.subfolder, ref.mime, path, path.stat().st_size, {}, ref.type
        )


def probe(file: OutputFile) -> None:
    """Fill width/height (images, videos) and frames/fps/duration (videos) from the file itself."""
    try:
        if file.kind == "image":
            from PIL import Image

            with Image.open(file.path) as img:
                file.meta.update(width=img.width, height=img.height)
        elif file.kind == "video":
            file.meta.update(_video_meta_quick(file.path) or _video_meta(file.path, {}) or {})
    except Exception as exc:  # a probe failure must not lose the output
        file.meta["probe_error"] = f"{type(exc).__name__}: {exc}"[:200]


# Opening a container makes libavformat read packets until it knows every stream
# (avformat_find_stream_info); for H.264 it reads and DECODES up to ~7 frames to guess the decoder's
# delay: most of the probe's time. None of what we report needs that (size and rate come from the
# container and the codec headers, the frame count from the index), so the decoders skip every frame
# and the reading stops after the first packet; an MP4 also skips the guessing of its container
# format (every demuxer tried on its first bytes). A file that this quick open can't read, or whose
# size or rate only more packets tell, is probed again the ordinary way.
_HEADERS_ONLY = {"skip_frame": "all", "probesize": "32"}
_FORMAT_BY_EXT = {"mp4": "mp4", "m4v": "mp4", "mov": "mov"}


def _video_meta_quick(path: Path) -> dict[str, Any] | None:
    try:
        return _video_meta(path, _HEADERS_ONLY, _FORMAT_BY_EXT.get(path.suffix[1:].lower()))
    except Exception:  # e.g. a WebM named .mp4: the ordinary open reads it, or names the cause
        return None


def _video_meta(path: Path, options: dict[str, str], container_format: str | None = None) -> dict[str, Any] | None:
    """width/height/frames/fps/duration_sec of the first video stream; with `options`, None when
    they left the size or the rate unknown."""
    import av

    with av.open(str(path), format=container_format, options=options) as container:
        stream = container.streams.video[0]
        width, height = stream.codec_context.width, stream.codec_context.height
        rate = stream.average_rate or Fraction(0)
        if options and not (width and height and rate):
            return None
        frames = stream.frames or sum(1 for _ in container.demux(stream) if _.size)
        return {
            "width": width,
            "height": height,
            "frames": frames,
            "fps": round(float(rate), 3),
            "duration_sec": round(frames / float(rate), 3) if rate else None,
        }


def encode_base64(path: Path) -> str:
    """base64 of a file with a peak near the encoded size (≈1.4x the file, was 2.7x).

    One str grows chunk by chunk: CPython extends a str in place on `s += t` when nothing else
    refers to it (the documented in-place optimisation of string concatenation) and glibc grows a
    large block with mremap, so no second full copy is made (a bytearray plus its decoded copy was
    two). Keep the plain `while True` loop: written with `while block := ...` the in-place path was
    measured not to happen (2.9x); benchmarks/rss_probe.py measures it.
    """
    chunk = 768 * 1024  # a multiple of 3: the pieces concatenate into valid base64
    out = ""
    with path.open("rb") as fh:
        while True:
            block = fh.read(chunk)
            if not block:
                return out
            out += pybase64.b64encode_as_string(block)


def endpoint_region(endpoint_url: str) -> str | None:
    """The region in BUCKET_ENDPOINT_URL, read as the runpod SDK reads it (rp_upload.extract_region_from_url):
    the label after `.s3.` (AWS, Backblaze: `https://<bucket>.s3.<region>.amazonaws.com`), or the one
    before `digitaloceanspaces.com`; None otherwise (boto3's us-east-1)."""
    if ".s3." in endpoint_url:
        return endpoint_url.split(".s3.", 1)[1].split(".", 1)[0].split("/", 1)[0] or None
    host = urlparse(endpoint_url).hostname or ""
    if host.endswith(".digitaloceanspaces.com"):
        labels = host.split(".")
        return labels[-3] if len(labels) >= 3 else None
    return None


def sdk_bucket(now: float | None = None) -> str:
    """The bucket the official worker names (runpod SDK's rp_upload.upload_image): the month, `MM-YY`.

    Sent path-style to BUCKET_ENDPOINT_URL, as boto3 does with an endpoint URL, so on a virtual-hosted
    URL (`https://<bucket>.s3.<region>.amazonaws.com`) the object lands in `<bucket>` under `MM-YY/<job id>/`.
    """
    return time.strftime("%m-%y", time.localtime(now))  # the SDK's time.strftime("%m-%y"): local time


class S3Store:
    """Uploads to an S3-compatible bucket (RunPod's BUCKET_* convention) and returns presigned URLs.

    `bucket` None: the official worker's semantics (sdk_bucket, evaluated per upload as the SDK does).
    """

    def __init__(
        self,
        endpoint_url: str,
        access_key: str | None,
        secret_key: str | None,
        bucket: str | None,
        region: str | None = None,
        expires_s: int = 7 * 24 * 3600,
    ) -> None:
        import boto3  # only workers that use a bucket pay for the import
        from botocore.config import Config

        # SigV4 presigned URLs: they carry the access key id and a signature, never the secret key, and
        # expire after `expires_s` (PRESIGN_EXPIRES_S, at most SigV4's 7 days). boto3 would otherwise
        # sign some endpoints with the legacy SigV2.
        self.client = boto3.client(
            "s3",
            endpoint_url=endpoint_url,
            aws_access_key_id=access_key,
            aws_secret_access_key=secret_key,
            region_name=region or endpoint_region(endpoint_url) or "us-east-1",
            config=Config(signature_version="s3v4"),
        )
        self._bucket, self.expires_s = bucket, expires_s

    @property
    def bucket(self) -> str:
        return self._bucket or sdk_bucket()

    def put(self, key: str, path: Path, mime: str) -> str:
        bucket = self.bucket
        try:
            self.client.upload_file(str(path), bucket, key, ExtraArgs={"ContentType": mime})
            return self.client.generate_presigned_url(
                "get_object", Params={"Bucket": bucket, "Key": key}, ExpiresIn=self.expires_s
            )
        except Exception as exc:
            raise JobError(
                "OUTPUT_UPLOAD_FAILED", f"upload of {path.name} to bucket {bucket!r} failed: {type(exc).__name__}"
            ) from None
