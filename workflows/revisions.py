"""Git revisions: the one test for "this names a commit" (a pack's saved `ver`, a Hugging Face revision). Pure."""

from __future__ import annotations

import re

_COMMIT = re.compile(r"[0-9a-f]{40}")


def is_commit(revision: str | None) -> bool:
    """A full 40-hex commit id, lowercase as git and Hugging Face write it (a caller accepting any case
    lowercases first: a cache folder or ref is matched exactly)."""
    return revision is not None and _COMMIT.fullmatch(revision) is not None
