"""`comfy-runpod`: one parser, one dispatcher, one error/exit-code boundary (pipx style).

Every subcommand is one line in COMMANDS: (name, module). The module holds HELP, `add_arguments(p)`
(argparse only there) and `run(args, renderer) -> (data, exit code)`, which calls a command in
client/commands/ (plain data in, data out, no printing) and hands back the data; client.render prints
it as text or one JSON envelope. The modules live in client/parsers/ and import client.parsers.shared,
never this module (it loads them by name). `python client/<name>.py ...` runs the same subcommand.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Callable, Sequence
from types import ModuleType
from typing import Any

from client.errors import EXIT_INTERRUPTED, EXIT_UNUSABLE, ClientError
from client.parsers.shared import Parser, common_flags
from client.redact import RedactingFilter, redact
from client.render import Renderer

PROG = "comfy-runpod"
DESCRIPTION = "Run ComfyUI on RunPod Serverless and know, in seconds, whether a deployment works."
# Adding a subcommand is one line here. health = the worker's sub-second ping (diagnose --test).
COMMANDS: tuple[tuple[str, str], ...] = (
    ("health", "client.parsers.health"),
    ("diagnose", "client.parsers.diagnose"),
    ("generate", "client.parsers.generate"),
    ("jobs", "client.parsers.jobs"),
    ("validate", "client.parsers.validate"),
    ("bench", "client.parsers.bench"),
    ("workflow", "client.parsers.workflow"),
    ("volume", "client.parsers.volume"),
    ("report", "client.parsers.report"),
    ("ui", "client.parsers.ui"),
)

EPILOG = """environment:
  RUNPOD_API_KEY, RUNPOD_ENDPOINT_ID   RunPod cloud (https://api.runpod.ai/v2/<id>)
  RUNPOD_ENDPOINT_URL                  a ComfyUI server directly (no RunPod)
  TEST_TIMEOUT (600)  TEST_POLL_INTERVAL (5)  TEST_RETRIES (3)  TEST_HTTP_TIMEOUT (30)
  COMFY_RUNPOD_LEDGER  COMFY_RUNPOD_HISTORY  COMFY_RUNPOD_OUTPUTS
exit codes: 0 ok · 1 unhealthy / failed · 2 unreachable, misconfigured or bad usage · 130 interrupted
"""


_FORMAT = argparse.RawDescriptionHelpFormatter


def build_parser(
    commands: Sequence[tuple[str, str]] | None = None, only: str | None = None
) -> tuple[argparse.ArgumentParser, dict]:
    """The one parser: a subparser per command, each with the common flags. Returns (parser, name -> module).

    `only`: the command being run; the other command modules are then not imported (a bare entry
    keeps their names in the parser), which keeps `health` fast from process start.
    """
    commands = COMMANDS if commands is None else commands
    top = Parser(prog=PROG, description=DESCRIPTION, epilog=EPILOG, formatter_class=_FORMAT)
    sub = top.add_subparsers(dest="command", metavar="COMMAND", required=True, parser_class=Parser)
    common = common_flags()
    modules: dict[str, ModuleType] = {}
    for name, module_name in commands:
        if only is not None and name != only:
            sub.add_parser(name)
            continue
        module = modules[name] = importlib.import_module(module_name)
        doc = (module.__doc__ or "").strip()
        p = sub.add_parser(
            name,
            parents=[common],
            help=module.HELP,
            description=doc,
            epilog=EPILOG,
            formatter_class=_FORMAT,
        )
        module.add_arguments(p)
    return top, modules


def dispatch(argv: Sequence[str] | None = None) -> int:
    """Parse, run the chosen command, render its data (or its error) once, return the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    names = {name for name, _ in COMMANDS}
    parser, modules = build_parser(only=argv[0] if argv and argv[0] in names else None)
    args = parser.parse_args(argv)
    module = modules[args.command]
    check = getattr(module, "check_arguments", None)
    if check is not None:
        check(parser, args)
    label = getattr(module, "label", lambda a: args.command)(args)
    return main(label, args, lambda r: module.run(args, r))


def entry() -> None:
    """The `comfy-runpod` console script."""
    sys.exit(dispatch())


def run_as_script(name: str, argv: Sequence[str] | None = None) -> int:
    """`python client/<name>.py ARGS` = `comfy-runpod <name> ARGS`."""
    return dispatch([name, *(sys.argv[1:] if argv is None else argv)])


def _logging(verbose: int) -> None:
    level = logging.WARNING if verbose == 0 else logging.INFO if verbose == 1 else logging.DEBUG
    logging.basicConfig(level=level, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s")
    for handler in logging.getLogger().handlers:
        handler.addFilter(RedactingFilter())
    if verbose == 0:  # urllib3 logs every retry at WARNING; the final error says what happened
        logging.getLogger("urllib3").setLevel(logging.ERROR)


def main(command: str, args: argparse.Namespace, body: Callable[[Renderer], tuple[dict[str, Any], int]]) -> int:
    """Run `body` (which returns (data, exit code)) and render; every failure becomes an exit code."""
    _logging(args.verbose)
    renderer = Renderer(json_mode=args.json)
    try:
        data, code = body(renderer)
    except ClientError as exc:
        renderer.error(command, exc)
        return exc.exit_code
    except KeyboardInterrupt:
        renderer.error(command, ClientError("interrupted", code="INTERRUPTED"))
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        return EXIT_UNUSABLE
    except Exception as exc:  # a bug: say so without a traceback full of request data
        logging.getLogger("client").debug("unexpected error", exc_info=True)
        renderer.error(
            command,
            ClientError(
                redact(f"{type(exc).__name__}: {exc}")[:500],
                code="CLIENT_BUG",
                fix="This is a bug in the client: re-run with -vv and report it.",
            ),
        )
        return EXIT_UNUSABLE
    renderer.result(command, data, code)
    return code


if __name__ == "__main__":
    entry()
