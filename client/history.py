"""Every validate and bench run, recorded in a local SQLite file (beside the job ledger), for trends and baselines.

One `runs` row per command run (kind validate|bench, target label, suite or workflow name, verdict,
cold start) and one `metrics` row per workflow of it (runs, success rate, generation p50/p95, delayTime
p50, cost per output). Default location: history.sqlite beside the ledger
(~/.cache/comfy-runpod/history.sqlite), overridden by COMFY_RUNPOD_HISTORY.
"""

from __future__ import annotations

import sqlite3
import time
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

from client.sqlite_db import transaction

_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,            -- validate | bench
    target TEXT NOT NULL,          -- the target's label (never a key)
    name TEXT NOT NULL,            -- the suite (validate) or the workflow (bench)
    started_at TEXT NOT NULL,
    passed INTEGER NOT NULL,
    cold_start_s REAL,
    report_dir TEXT,
    created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS metrics (
    run_id INTEGER NOT NULL REFERENCES runs (id),
    workflow TEXT NOT NULL,
    runs INTEGER NOT NULL,
    success_rate REAL NOT NULL,
    p50_s REAL,
    p95_s REAL,
    delay_p50_s REAL,
    cost_per_output_usd REAL,
    PRIMARY KEY (run_id, workflow)
);
"""
METRICS = ("runs", "success_rate", "p50_s", "p95_s", "delay_p50_s", "cost_per_output_usd")


class History:
    def __init__(self, path: Path) -> None:
        self.path = path

    def _db(self) -> AbstractContextManager[sqlite3.Connection]:
        return transaction(self.path, _SCHEMA, rows=True)

    def record(self, run: dict[str, Any], metrics: dict[str, dict[str, Any]]) -> int:
        """Store one run (kind, target, name, started_at, passed, cold_start_s, report_dir) and its metrics."""
        with self._db() as conn:
            cur = conn.execute(
                "INSERT INTO runs (kind, target, name, started_at, passed, cold_start_s, report_dir, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    run["kind"],
                    run["target"],
                    run["name"],
                    run["started_at"],
                    int(bool(run["passed"])),
                    run.get("cold_start_s"),
                    run.get("report_dir"),
                    time.time(),
                ),
            )
            run_id = int(cur.lastrowid or 0)
            conn.executemany(
                f"INSERT INTO metrics (run_id, workflow, {', '.join(METRICS)}) VALUES (?, ?{', ?' * len(METRICS)})",
                [(run_id, wf, *(m.get(k) for k in METRICS)) for wf, m in metrics.items()],
            )
        return run_id

    def _load(self, conn: sqlite3.Connection, row: sqlite3.Row) -> dict[str, Any]:
        metrics = conn.execute("SELECT * FROM metrics WHERE run_id = ? ORDER BY workflow", (row["id"],)).fetchall()
        run = {k: row[k] for k in row.keys() if k != "created_at"}  # noqa: SIM118 (sqlite3.Row)
        run["passed"] = bool(run["passed"])
        run["metrics"] = {m["workflow"]: {k: m[k] for k in METRICS} for m in metrics}
        return run

    def get(self, run_id: int) -> dict[str, Any] | None:
        if not self.path.exists():  # reading never creates the file
            return None
        with self._db() as conn:
            row = conn.execute("SELECT * FROM runs WHERE id = ?", (run_id,)).fetchone()
            return self._load(conn, row) if row else None

    def last(self, kind: str, target: str, name: str) -> dict[str, Any] | None:
        """The latest recorded run of the same kind, target and suite/workflow."""
        if not self.path.exists():
            return None
        with self._db() as conn:
            row = conn.execute(
                "SELECT * FROM runs WHERE kind = ? AND target = ? AND name = ? ORDER BY id DESC LIMIT 1",
                (kind, target, name),
            ).fetchone()
            return self._load(conn, row) if row else None

    def trend(self, workflow: str, target: str | None = None, limit: int = 20) -> list[dict[str, Any]]:
        """The last `limit` runs (oldest first) that measured `workflow`, on one target or on any."""
        if not self.path.exists():
            return []
        query = "SELECT runs.* FROM runs JOIN metrics ON metrics.run_id = runs.id WHERE metrics.workflow = ?"
        args: list[Any] = [workflow]
        if target:
            query += " AND runs.target = ?"
            args.append(target)
        with self._db() as conn:
            rows = conn.execute(query + " ORDER BY runs.id DESC LIMIT ?", (*args, limit)).fetchall()
            return [self._load(conn, r) for r in reversed(rows)]
