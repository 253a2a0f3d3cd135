"""A subcommand used only by tests: proves that adding one is one line in client.cli.COMMANDS."""

from __future__ import annotations

import argparse

from client.render import Renderer

HELP = "echo the target settings back (test only)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--word", default="hello")


def run(args: argparse.Namespace, r: Renderer) -> tuple[dict, int]:
    return {"word": args.word, "json": args.json}, 0
