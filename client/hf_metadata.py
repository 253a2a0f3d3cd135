"""A model file's size and sha256 without downloading it: Hugging Face's own metadata, else the server's size.

Why huggingface_hub: Hugging Face answers a file's HEAD /resolve with its size (X-Linked-Size) and, for
LFS files, its sha256 (X-Linked-Etag); a git-stored file's ETag is its blob id (no sha256 published).
The library speaks exactly that, follows the Hub's redirects only, raises typed errors for gated and missing
files, and honours HF_ENDPOINT (the tests point it at a local stand-in, tests/hf_standin.py).
Other hosts: the size from a HEAD request; the sha256 only when the caller opts in to a download.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from urllib.parse import urlsplit

import requests

from workflows.hf_url import HfFile, parse_hf_url

_SHA256 = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True, slots=True)
class FileFacts:
    size_bytes: int | None = None
    sha256: str | None = None
    problem: str | None = None  # why something is missing, in words a person can act on


def hf_facts(
    file: HfFile, *, endpoint: str | None, token: str | None, timeout_s: float, download_sha256: bool = False
) -> FileFacts:
    """Size and sha256 from the Hub's HEAD /resolve. A git-stored (non-LFS) file has no published sha256
    (its ETag is the git blob id): it is small by the Hub's rules, so --download-sha256 hashes it."""
    try:
        from huggingface_hub import get_hf_file_metadata, hf_hub_url
        from huggingface_hub.errors import EntryNotFoundError, GatedRepoError, HfHubHTTPError, RepositoryNotFoundError
    except ImportError:
        return FileFacts(problem="huggingface_hub is not installed: pip install 'comfy-runpod[client]'")

    where = f"{file.repo}/{file.path}@{file.revision}"
    try:
        url = hf_hub_url(file.repo, file.path, repo_type=file.repo_type, revision=file.revision, endpoint=endpoint)
        meta = get_hf_file_metadata(url, token=token or False, timeout=timeout_s, endpoint=endpoint)
        sha = meta.etag.lower() if meta.etag and _SHA256.match(meta.etag.lower()) else None
        if sha is not None:
            return FileFacts(meta.size, sha)
        if download_sha256:
            auth = {"Authorization": f"Bearer {token}"} if token else {}
            return other_facts(url, download_sha256=True, timeout_s=timeout_s, headers=auth)
        return FileFacts(
            meta.size,
            None,
            f"{where} is stored in git, not LFS: Hugging Face publishes no sha256 for it; "
            "pass --download-sha256 to hash it",
        )
    except GatedRepoError:
        return FileFacts(
            problem=f"{file.repo} is gated: a Hugging Face token with access is needed. Accept its terms at "
            f"https://huggingface.co/{file.repo} and set HF_TOKEN (a read token) before running again"
            + (" (the HF_TOKEN given has no access)" if token else "")
        )
    except RepositoryNotFoundError:
        return FileFacts(problem=f"Hugging Face has no repository {file.repo} (or it is private: set HF_TOKEN)")
    except EntryNotFoundError:
        return FileFacts(problem=f"Hugging Face repository {file.repo} has no file {file.path} at {file.revision}")
    except (HfHubHTTPError, OSError, ValueError) as exc:
        return FileFacts(problem=f"Hugging Face metadata for {where} could not be read: {str(exc)[:200]}")
    except Exception as exc:
        # the HTTP client's own errors (httpx2 in huggingface_hub 2.x: unreachable host, timeout) are not part
        # of huggingface_hub's API; each is a problem for this model, never a crash of workflow add
        return FileFacts(
            problem=f"Hugging Face metadata for {where} could not be read ({type(exc).__name__}: {str(exc)[:200]}): "
            "check the network (or HF_ENDPOINT) and run again"
        )


def other_facts(
    url: str, *, download_sha256: bool, timeout_s: float, headers: dict[str, str] | None = None
) -> FileFacts:
    """Any other host: Content-Length from HEAD; the sha256 only by downloading (opt-in)."""
    try:
        head = requests.head(url, allow_redirects=True, timeout=timeout_s, headers=headers)
        head.raise_for_status()
        length = head.headers.get("Content-Length")
        size = int(length) if length and length.isdigit() else None
        if not download_sha256:
            return FileFacts(
                size, None, f"{urlsplit(url).hostname} publishes no sha256: pass --download-sha256 to hash it"
            )
        digest, total = hashlib.sha256(), 0
        with requests.get(url, stream=True, timeout=timeout_s, headers=headers) as r:
            r.raise_for_status()
            for chunk in r.iter_content(1 << 20):
                digest.update(chunk)
                total += len(chunk)
        return FileFacts(total, digest.hexdigest(), None)
    except (requests.RequestException, OSError) as exc:
        return FileFacts(problem=f"{url} could not be read: {str(exc)[:200]}")


def file_facts(
    url: str,
    *,
    endpoint: str | None = None,
    token: str | None = None,
    download_sha256: bool = False,
    timeout_s: float = 30.0,
) -> FileFacts:
    """Size and sha256 of the file at `url` (see the module docstring)."""
    hf = parse_hf_url(url)
    if hf is not None:
        return hf_facts(hf, endpoint=endpoint, token=token, timeout_s=timeout_s, download_sha256=download_sha256)
    return other_facts(url, download_sha256=download_sha256, timeout_s=timeout_s)
