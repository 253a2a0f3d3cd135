"""What a Hugging Face file URL names: repository, kind, revision and path. Pure.

One parser for every reader of such URLs: the worker's model cache (workflows/hf_cache.py) and the
client's size/sha256 lookup (client/hf_metadata.py). The URL shape is the Hub's own
(`https://huggingface.co/[datasets/|spaces/]ORG/NAME/resolve/REV/PATH`, `/blob/` too; `hf.co` is its
short host); `huggingface_hub.hf_hub_url` builds the same shape.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

HF_HOSTS = frozenset({"huggingface.co", "www.huggingface.co", "hf.co"})
_KINDS = {"datasets": "dataset", "spaces": "space"}


@dataclass(frozen=True, slots=True)
class HfFile:
    """One file of a Hugging Face repository, as a URL names it."""

    repo: str  # ORG/NAME
    revision: str  # a branch, tag or 40-hex commit
    path: str  # inside the repository, '/'-separated
    repo_type: str = "model"  # model | dataset | space (huggingface_hub's names)

    @property
    def repo_dir(self) -> str:
        """The repository's folder in the cache (huggingface_hub's `repo_folder_name`)."""
        return "models--" + self.repo.replace("/", "--")


def parse_hf_url(url: str | None) -> HfFile | None:
    """The repository, revision and path a Hub `/resolve/` (or `/blob/`) URL names, each segment unquoted;
    None for any other URL (another host, another page, or one that does not parse)."""
    if not url:
        return None
    try:
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
    except ValueError:  # "http://[x": nobody validates these URLs before they get here
        return None
    if parts.scheme not in ("https", "http") or host not in HF_HOSTS:
        return None
    segments = [unquote(s) for s in parts.path.split("/") if s]
    kind = _KINDS.get(segments[0], "model") if segments else "model"
    if kind != "model":
        segments = segments[1:]
    if len(segments) < 5 or segments[2] not in ("resolve", "blob"):
        return None
    return HfFile(f"{segments[0]}/{segments[1]}", segments[3], "/".join(segments[4:]), kind)
