#!/usr/bin/env python3
"""`python client/generate.py ARGS` = `comfy-runpod generate ARGS`, from a clone without installing.

A launcher only: the flags are in client/parsers/generate.py, the work in client/commands/generate.py.
"""

import sys
from pathlib import Path

if __package__ in (None, ""):  # run as `python client/generate.py`: import from the repo root
    sys.path[0] = str(Path(__file__).resolve().parent.parent)

from client.cli import run_as_script

if __name__ == "__main__":
    sys.exit(run_as_script("generate"))
