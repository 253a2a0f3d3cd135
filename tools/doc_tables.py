"""Regenerate the README's error table from workflows.errors.CODES: `python -m tools.doc_tables`.

tests/test_docs.py fails when the README and the code table disagree; this writes the table so
adding a code is one edit in one place.
"""

from __future__ import annotations

import sys
from pathlib import Path

from workflows.errors import CODES

README = Path(__file__).resolve().parent.parent / "README.md"
START, END = "<!-- error-table -->", "<!-- /error-table -->"


def error_table() -> str:
    rows = ["| code | what to do | `logs_tail` | worker recycled |", "|---|---|---|---|"]
    for code in CODES.values():
        yes = {True: "yes", False: "no"}
        rows.append(f"| `{code.name}` | {code.fix} | {yes[code.comfy_involved]} | {yes[code.refresh_worker]} |")
    return "\n".join(rows)


def main() -> int:
    text = README.read_text()
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    README.write_text(f"{head}{START}\n{error_table()}\n{END}{tail}")
    print(f"README error table: {len(CODES)} codes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
