"""Print the worker's requirements: pyproject.toml's `dependencies` plus its `worker` extra.

    python3 docker/worker_requirements.py pyproject.toml > requirements.txt

Read with tomllib (stdlib), so the list lives in pyproject.toml only. The image builds the worker's
venv from this output alone: editing pyproject.toml's tool sections does not reinstall anything.
"""

from __future__ import annotations

import sys
import tomllib


def requirements(pyproject: str) -> list[str]:
    with open(pyproject, "rb") as f:
        project = tomllib.load(f)["project"]
    return [*project["dependencies"], *project["optional-dependencies"]["worker"]]


if __name__ == "__main__":
    print("\n".join(requirements(sys.argv[1] if len(sys.argv) > 1 else "pyproject.toml")))
