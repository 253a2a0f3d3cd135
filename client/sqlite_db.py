"""One way to open the client's local SQLite files (the job ledger, the run history)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def transaction(path: Path, schema: str, *, rows: bool = False) -> Iterator[sqlite3.Connection]:
    """A connection with `schema` applied, committed on success and always closed; `rows`: sqlite3.Row results.
    Each call opens its own connection, so concurrent commands (two terminals, CI jobs) never share one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path, timeout=10)
    if rows:
        conn.row_factory = sqlite3.Row
    try:
        conn.executescript(schema)
        with conn:
            yield conn
    finally:
        conn.close()
