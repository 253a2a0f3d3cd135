"""Landlock's two phases (handler.landlock_phases, handler.comfy_boot) in a real child, without ComfyUI.

comfy_boot runs for real under the start ruleset the preexec applies, with the serve ruleset's fd
passed as the supervisor passes it, in front of a fake ComfyUI whose `nodes.init_extra_nodes` imports
a "pack" that writes its own folder and starts a thread. The real stack (ComfyUI 0.3.75 with RES4LYF)
is in tests/security/test_confinement.py.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from handler import comfy_boot, landlock, landlock_phases
from handler.comfylog import ComfyLog

ABI, WHY = landlock.abi_version()
needs_landlock = pytest.mark.skipif(ABI == 0, reason=f"this kernel has no Landlock: {WHY}")

TRY = """
import os, sys, threading

def try_write(name):
    try:
        with open(os.path.join(sys.argv[1], name), "w") as fh:
            fh.write("x")
        return "ok"
    except OSError as exc:
        return os.strerror(exc.errno)
"""

# ComfyUI's nodes.py: init_extra_nodes imports the packs (here: one that writes its folder at import and
# starts a thread that writes again once told to)
NODES = (
    TRY
    + """
go, done = threading.Event(), threading.Event()

def pack_thread():
    go.wait()
    print("import thread", try_write("from_import_thread.json"))
    done.set()

async def init_extra_nodes(init_custom_nodes=True, init_api_nodes=True):
    print("import", try_write("config.json"))
    threading.Thread(target=pack_thread, name="pack-thread", daemon=True).start()
"""
)

# ComfyUI's main.py as 0.3.75 orders it: nodes loaded in the main thread, then the prompt worker thread
MAIN = (
    TRY
    + """
import asyncio
import nodes

print("argv", sys.argv[1:])
if hasattr(nodes, "init_extra_nodes") and not hasattr(nodes, "NEVER_CALLED"):
    asyncio.new_event_loop().run_until_complete(nodes.init_extra_nodes())
print("main", try_write("config.json"))
worker = threading.Thread(target=lambda: print("worker", try_write("evil.py")))
worker.start()
worker.join()
if any(t.name == "pack-thread" for t in threading.enumerate()):
    nodes.go.set()
    nodes.done.wait(30)
"""
)


def run_phased(
    tmp_path: Path,
    nodes: str = NODES,
    main: str = MAIN,
    serve_fd: int | None = None,
    code: int = 0,
    files: dict[str, str] | None = None,
) -> tuple[list[str], Path]:
    """comfy_boot's output lines and the pack's folder, run as the supervisor runs it (start ruleset in
    the preexec, serve ruleset's fd passed and named in its argument)."""
    comfy, pack = tmp_path / "ComfyUI", tmp_path / "custom_nodes" / "a_pack"
    comfy.mkdir()
    pack.mkdir(parents=True)
    (comfy / "nodes.py").write_text(nodes)
    (comfy / "main.py").write_text(main)
    for name, text in (files or {}).items():
        (comfy / name).write_text(text)
    pyroot = [Path(p) for p in {sys.prefix, sys.base_prefix, *sys.path} if p and os.path.exists(p)]
    rules = [(p, landlock.READ) for p in [*pyroot, Path("/usr"), Path("/lib"), Path("/lib64"), comfy]]
    rules += [(Path(comfy_boot.FILE), landlock.READ), (Path("/dev/null"), landlock.DEVICE)]
    start_fd, serve = landlock_phases.rulesets(ABI, rules, [pack], None, phased=True)
    assert serve is not None
    fd = serve if serve_fd is None else serve_fd
    argv = landlock_phases.boot_argv([sys.executable, comfy_boot.FILE, str(comfy / "main.py"), str(pack)], fd)
    try:
        proc = subprocess.run(
            argv,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            preexec_fn=lambda: landlock.restrict_self(start_fd),
            pass_fds=(fd,),
            timeout=60,
            check=False,
        )
    finally:
        landlock.close(start_fd)
        landlock.close(serve)
    assert proc.returncode == code, proc.stdout.decode()
    return [line.decode() for line in proc.stdout.split(b"\n")[:-1]], pack


@needs_landlock
def test_a_pack_writes_its_folder_while_nodes_load_and_nothing_can_after(tmp_path):
    lines, pack = run_phased(tmp_path)
    assert "import ok" in lines  # the start phase: a pack makes its config at import
    assert "main Permission denied" in lines  # the serve phase, in the main thread, once nodes are loaded
    assert "worker Permission denied" in lines  # and in a thread started after (ComfyUI's prompt worker)
    assert not (pack / "evil.py").exists() and (pack / "config.json").read_text() == "x"
    # a thread the pack started at import keeps the start phase's domain: named, and documented
    assert "import thread ok" in lines
    controls = [line for line in lines if line.startswith(comfy_boot.CONTROL + comfy_boot.SERVE)]
    assert controls == [f'{comfy_boot.CONTROL}serve {{"at": "nodes loaded", "threads": ["pack-thread"]}}']
    log = ComfyLog(tmp_path / "comfyui.log", echo=None)
    for line in lines:
        log.feed(line + "\n")
    assert log.serve_phase() == {"at": "nodes loaded", "threads": ["pack-thread"]}
    # ComfyUI never sees comfy_boot's argument (its /system_stats argv): its own arguments only
    assert f"argv [{str(pack)!r}]" in lines


@needs_landlock
def test_a_nodes_module_without_init_extra_nodes_gets_the_serve_phase_at_its_import(tmp_path):
    lines, pack = run_phased(tmp_path, nodes=TRY)
    assert "main Permission denied" in lines and "worker Permission denied" in lines
    assert f'{comfy_boot.CONTROL}serve {{"at": "nodes imported", "threads": []}}' in lines
    assert not list(pack.iterdir())


@needs_landlock
def test_no_prompt_runs_in_the_start_phase(tmp_path):
    """A ComfyUI that never calls init_extra_nodes: its first prompt enters the serve phase first."""
    execution = "class PromptExecutor:\n    def execute(self, prompt, prompt_id, *a, **k):\n        prompt()\n"
    worker = 'lambda: execution.PromptExecutor().execute(lambda: print("worker", try_write("evil.py")), "p1")'
    main = MAIN.replace(
        'worker = threading.Thread(target=lambda: print("worker", try_write("evil.py")))',
        f"import execution\nworker = threading.Thread(target={worker})",
    )
    assert main != MAIN
    nodes = NODES + "NEVER_CALLED = True\n"
    lines, pack = run_phased(tmp_path, nodes=nodes, main=main, files={"execution.py": execution})
    assert "main ok" in lines  # the start phase: no hook fired in the main thread
    assert f"{comfy_boot.TAG}p1{comfy_boot.SEP}worker Permission denied" in lines  # the prompt's node
    assert not (pack / "evil.py").exists()
    assert f'{comfy_boot.CONTROL}serve {{"at": "first prompt", "threads": ["MainThread"]}}' in lines


@needs_landlock
def test_a_serve_phase_that_cant_be_applied_ends_comfyui(tmp_path):
    """Fail closed: ComfyUI never serves with packs' folders open (here the fd is no Landlock ruleset)."""
    lines, pack = run_phased(tmp_path, serve_fd=1, code=1)
    assert any(line.startswith("comfy_boot: could not apply Landlock's serve phase (nodes loaded):") for line in lines)
    assert "main ok" not in lines and "worker ok" not in lines and not (pack / "evil.py").exists()


def test_the_serve_phase_applies_before_main_where_comfy_boot_cant_apply_it():
    before_main = "the serve ruleset applies from the start, so packs can't write their folders at import"
    not_boot = landlock_phases.plan(7, None, user=True, boot=False)
    assert not not_boot.phased and not_boot.start_why_not == (
        f"COMFY_MAIN is not run through handler.comfy_boot (not a Python file): {before_main}"
    )
    assert not_boot.report()["serve"] == {"active": True, "at": "before main", "why_not": None, "start_threads": []}
    assert not landlock_phases.plan(7, None, user=False, boot=True).phased  # no user: packs' folders stay closed
    phased = landlock_phases.plan(7, None, user=True, boot=True)
    assert phased.phased and phased.report()["serve"]["why_not"] == landlock_phases.NOT_YET
    seen = {"at": "nodes loaded", "threads": ["t"]}
    assert phased.report(seen) == {
        "start": {"active": True, "why_not": None},
        "serve": {"active": True, "at": "nodes loaded", "why_not": None, "start_threads": ["t"]},
    }
    off = landlock_phases.plan(0, "no Landlock here", user=True, boot=True).report()
    assert off["start"]["why_not"] == off["serve"]["why_not"] == "no Landlock here"
    assert not off["serve"]["active"]


def test_packs_folders_are_opened_for_the_start_phase_only_where_serve_closes_them(tmp_path):
    pack = tmp_path / "a_pack"
    pack.mkdir()
    os.chmod(pack, 0o755)
    (pack / "__init__.py").write_text("")
    (pack / "config.ini").write_text("")
    os.chmod(pack / "config.ini", 0o644)
    landlock_phases.set_pack_dirs([pack], os.getgid(), writable=True)
    assert stat.S_IMODE(pack.stat().st_mode) == 0o775 | stat.S_ISVTX  # group-writable, sticky
    assert stat.S_IMODE((pack / "config.ini").stat().st_mode) == 0o664  # the data file it may rewrite
    assert stat.S_IMODE((pack / "__init__.py").stat().st_mode) == 0o644  # never its code
    landlock_phases.set_pack_dirs([pack], os.getgid(), writable=False)
    assert stat.S_IMODE(pack.stat().st_mode) == 0o755
    assert stat.S_IMODE((pack / "config.ini").stat().st_mode) == 0o644


def test_comfy_boots_argument_goes_right_after_its_file():
    command = ["python", comfy_boot.FILE, "main.py", "--port", "1"]
    assert landlock_phases.boot_argv(command, 7) == ["python", comfy_boot.FILE, "--landlock-serve-fd=7", *command[2:]]
    assert landlock_phases.boot_argv(command, None) == command
    assert landlock_phases.boot_argv(["/wrapper.sh", "--port", "1"], 7) == ["/wrapper.sh", "--port", "1"]
