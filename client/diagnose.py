#!/usr/bin/env python3
"""`python client/diagnose.py ARGS` = `comfy-runpod diagnose ARGS`, from a clone without installing.

A launcher only: the flags are in client/parsers/diagnose.py, the work in client/commands/diagnose.py.
"""

import sys
from pathlib import Path

if __package__ in (None, ""):  # run as `python client/diagnose.py`: import from the repo root
    sys.path[0] = str(Path(__file__).resolve().parent.parent)

from client.cli import run_as_script

if __name__ == "__main__":
    sys.exit(run_as_script("diagnose"))
