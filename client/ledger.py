"""A small local ledger of submitted jobs (sqlite), so an idempotency key is never paid for twice.

RunPod has no idempotency keys of its own. The client claims a key here *before* it submits, records
the job id as soon as RunPod answers, and on a re-run with the same key follows (or returns) that
job instead of submitting again. Keys are scoped per endpoint URL and bound to a hash of the
request: the same key with a different request is refused. Default location
~/.cache/comfy-runpod/jobs.sqlite, overridden by COMFY_RUNPOD_LEDGER.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import time
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from client.sqlite_db import transaction

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    endpoint TEXT NOT NULL,
    idem_key TEXT,
    job_id TEXT,
    workflow TEXT,
    request_hash TEXT NOT NULL,
    state TEXT NOT NULL,          -- submitting | submitted | done
    status TEXT,                  -- RunPod's last status (COMPLETED, FAILED, ...)
    error_code TEXT,
    output_dir TEXT,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    UNIQUE (endpoint, idem_key)
);
CREATE INDEX IF NOT EXISTS jobs_job_id ON jobs (job_id);
"""


def request_hash(job_input: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(job_input, sort_keys=True, default=str).encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class LedgerRow:
    rowid: int
    endpoint: str
    idem_key: str | None
    job_id: str | None
    workflow: str | None
    request_hash: str
    state: str
    status: str | None
    error_code: str | None
    output_dir: str | None
    created_at: float
    updated_at: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "job_id": self.job_id,
            "idempotency_key": self.idem_key,
            "endpoint": self.endpoint,
            "workflow": self.workflow,
            "state": self.state,
            "status": self.status,
            "error_code": self.error_code,
            "output_dir": self.output_dir,
            "created_at": time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(self.created_at)),
        }


class Ledger:
    def __init__(self, path: Path) -> None:
        self.path = path

    def _db(self) -> AbstractContextManager[sqlite3.Connection]:
        return transaction(self.path, _SCHEMA)

    def _row(self, conn: sqlite3.Connection, where: str, args: tuple[Any, ...]) -> LedgerRow | None:
        found = conn.execute(f"SELECT * FROM jobs WHERE {where}", args).fetchone()
        return LedgerRow(*found) if found else None

    def claim(self, endpoint: str, key: str, digest: str, workflow: str | None) -> tuple[LedgerRow, bool]:
        """(row, True) when this call claimed the key; (existing row, False) when it was claimed before."""
        now = time.time()
        with self._db() as conn:
            cur = conn.execute(
                "INSERT OR IGNORE INTO jobs (endpoint, idem_key, workflow, request_hash, state, created_at, updated_at)"
                " VALUES (?, ?, ?, ?, 'submitting', ?, ?)",
                (endpoint, key, workflow, digest, now, now),
            )
            row = self._row(conn, "endpoint = ? AND idem_key = ?", (endpoint, key))
        assert row is not None
        return row, cur.rowcount == 1

    def record(self, endpoint: str, job_id: str, digest: str, workflow: str | None) -> int:
        """A job submitted without a key (listed by `jobs.py list`)."""
        now = time.time()
        with self._db() as conn:
            cur = conn.execute(
                "INSERT INTO jobs (endpoint, job_id, workflow, request_hash, state, created_at, updated_at)"
                " VALUES (?, ?, ?, ?, 'submitted', ?, ?)",
                (endpoint, job_id, workflow, digest, now, now),
            )
            return int(cur.lastrowid or 0)

    def submitted(self, rowid: int, job_id: str) -> None:
        with self._db() as conn:
            conn.execute(
                "UPDATE jobs SET job_id = ?, state = 'submitted', updated_at = ? WHERE id = ?",
                (job_id, time.time(), rowid),
            )

    def finished(
        self, rowid: int, status: str, *, error_code: str | None = None, output_dir: str | None = None
    ) -> None:
        with self._db() as conn:
            conn.execute(
                "UPDATE jobs SET state = 'done', status = ?, error_code = ?, output_dir = COALESCE(?, output_dir),"
                " updated_at = ? WHERE id = ?",
                (status, error_code, output_dir, time.time(), rowid),
            )

    def get(self, rowid: int) -> LedgerRow | None:
        with self._db() as conn:
            return self._row(conn, "id = ?", (rowid,))

    def find_job(self, job_id: str) -> LedgerRow | None:
        if not self.path.exists():  # reading never creates the ledger
            return None
        with self._db() as conn:
            return self._row(conn, "job_id = ? ORDER BY id DESC LIMIT 1", (job_id,))

    def recent(self, limit: int = 20, endpoint: str | None = None) -> list[LedgerRow]:
        if not self.path.exists():
            return []
        with self._db() as conn:
            if endpoint:
                rows = conn.execute(
                    "SELECT * FROM jobs WHERE endpoint = ? ORDER BY id DESC LIMIT ?", (endpoint, limit)
                ).fetchall()
            else:
                rows = conn.execute("SELECT * FROM jobs ORDER BY id DESC LIMIT ?", (limit,)).fetchall()
        return [LedgerRow(*r) for r in rows]
