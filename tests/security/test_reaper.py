"""The kernel facts behind "nothing a job starts outlives ComfyUI" and "the port is ComfyUI's own", on real
processes and sockets (no stack): handler.reaper, handler.listener.

The subreaper cases run in a child Python (a subreaper for the rest of a pytest session would adopt every
orphan of every later test)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from handler import listener, reaper

REPO = Path(__file__).resolve().parents[2]
UNUSED_UID = 54321  # no user of the machine: nothing else runs as it

# A job's escape: fork, setsid, fork again; the grandchild prints its pid and stays.
DAEMON = """
import os, sys, time
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        print(os.getpid(), flush=True)
        time.sleep(600)
    os._exit(0)
os.wait()
"""


def run_as_worker(code: str) -> dict:
    """Run `code` in a fresh Python that is a child subreaper, as the worker is; its JSON answer."""
    prelude = textwrap.dedent(
        f"""
        import json, os, signal, subprocess, sys, time
        from handler import reaper
        assert reaper.become_subreaper() is None and reaper.is_subreaper()
        DAEMON = {DAEMON!r}
        UNUSED_UID = {UNUSED_UID}
        def alive(pid):
            p = reaper.read_proc(pid)
            return p is not None and not p.zombie
        def adopted_by_me(pid, timeout=10):
            end = time.monotonic() + timeout
            while time.monotonic() < end:
                p = reaper.read_proc(pid)
                if p is not None and p.ppid == os.getpid():
                    return True
                time.sleep(0.02)
            return False
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", prelude + textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_a_double_forked_daemon_is_adopted_and_killed_and_the_workers_own_children_are_left_alone():
    answer = run_as_worker(
        """
        comfy = subprocess.Popen([sys.executable, "-c", DAEMON], stdout=subprocess.PIPE, start_new_session=True)
        daemon = int(comfy.stdout.readline())
        comfy.wait()  # "ComfyUI" ended: its daemon is an orphan, in a session of its own
        mine = subprocess.Popen(["sleep", "30"])  # the worker's own child (its session)
        adopted = adopted_by_me(daemon)
        r = reaper.Reaper(None)
        killed = r.kill_all()
        gone = reaper.read_proc(daemon) is None  # killed and reaped: not even a zombie
        mine_alive = mine.poll() is None
        mine.kill()
        print(json.dumps({"adopted": adopted, "killed": killed, "gone": gone, "mine_alive": mine_alive,
                          "mine_status": mine.wait()}))
        """
    )
    assert answer["adopted"], "the orphan was not re-parented to the subreaper"
    assert answer["killed"] == 1 and answer["gone"]
    # the worker's own child survived, and its exit status was still subprocess.Popen's to read
    assert answer["mine_alive"] and answer["mine_status"] == -9


def test_a_restart_kills_comfyuis_tree_with_the_children_its_nodes_started():
    """supervisor.restart's kill_all: a node's helpers (children of ComfyUI, in its session) die with it."""
    answer = run_as_worker(
        """
        comfy = subprocess.Popen(["bash", "-c", "sleep 300 & sleep 300 & wait"], start_new_session=True)
        r = reaper.Reaper(None)
        r.watch(comfy.pid)
        end = time.monotonic() + 30
        while len(r.members()) < 3 and time.monotonic() < end:  # bash and its two sleeps
            time.sleep(0.02)
        helpers = [p for p in r.members() if p != comfy.pid]
        outside = r.kill_all()
        status = comfy.wait(30)  # ComfyUI's own exit status stays subprocess.Popen's to read
        print(json.dumps({"helpers": len(helpers), "outside": outside, "status": status,
                          "left": [p for p in helpers if reaper.read_proc(p) is not None]}))
        """
    )
    assert answer["helpers"] == 2
    assert answer["status"] == -9 and answer["outside"] == 0  # both were in ComfyUI's tree
    assert answer["left"] == [], "a helper outlived (or was left a zombie by) the restart"


def test_an_orphan_that_ended_on_its_own_is_reaped_by_its_own_pid():
    answer = run_as_worker(
        """
        reaper.REAP_S = 0.05
        comfy = subprocess.Popen([sys.executable, "-c", DAEMON.replace("time.sleep(600)", "time.sleep(0.3)")],
                                 stdout=subprocess.PIPE, start_new_session=True)
        daemon = int(comfy.stdout.readline())
        comfy.wait()
        adopted_by_me(daemon)
        r = reaper.Reaper(None).start()
        end = time.monotonic() + 10
        while reaper.read_proc(daemon) is not None and time.monotonic() < end:
            time.sleep(0.05)
        print(json.dumps({"gone": reaper.read_proc(daemon) is None}))
        """
    )
    assert answer["gone"], "the adopted zombie was never reaped"


@pytest.mark.skipif(os.geteuid() != 0, reason="switching to another uid needs root")
def test_every_process_of_comfyuis_user_dies_but_another_workers_comfyui():
    answer = run_as_worker(
        """
        def as_user():
            os.setgid(UNUSED_UID); os.setuid(UNUSED_UID)
        # a process of ComfyUI's user re-parented to the worker in the worker's own session: only its uid
        # tells it is ComfyUI's (an intermediate that exits leaves it behind)
        code = "import os,subprocess,sys; p=subprocess.Popen(['sleep','60']); print(p.pid, flush=True); os._exit(0)"
        hop = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, preexec_fn=as_user)
        stray = int(hop.stdout.readline()); hop.wait()
        adopted_by_me(stray)
        # another worker's ComfyUI on the same host: the same uid, under a process of another uid (root)
        other = "import subprocess,sys,os; p=subprocess.Popen(['sleep','60'], user=%d, group=%d); " \
                "print(p.pid, flush=True); p.wait()" % (UNUSED_UID, UNUSED_UID)
        worker2 = subprocess.Popen([sys.executable, "-c", other], stdout=subprocess.PIPE)
        sibling = int(worker2.stdout.readline())
        r = reaper.Reaper(UNUSED_UID)
        in_adopted = stray in reaper.adopted(reaper.processes())
        killed = r.kill_all()
        answer = {"in_adopted": in_adopted, "killed": killed, "stray_gone": reaper.read_proc(stray) is None,
                  "sibling_alive": alive(sibling)}
        os.kill(sibling, signal.SIGKILL); worker2.wait()
        print(json.dumps(answer))
        """
    )
    assert not answer["in_adopted"]  # the session rule alone would have missed it
    assert answer["killed"] == 1 and answer["stray_gone"]
    assert answer["sibling_alive"]


def test_a_listener_is_ours_only_when_its_socket_is_among_our_processes_fds():
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    port = server.getsockname()[1]
    try:
        assert listener.listening_inodes(port)
        assert listener.foreign_listener(port, [os.getpid()]) is None
        other = listener.foreign_listener(port, [1])
        assert other is not None and other.pid == os.getpid()
        assert "pytest" in other.command or "python" in other.command
        assert f"process {os.getpid()}" in other.describe()
    finally:
        server.close()
    assert listener.foreign_listener(port, [1]) is None  # nobody listens any more


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to start a listener as ComfyUI's user")
def test_comfyuis_user_owns_its_listener_where_its_fds_are_closed_to_the_worker(tmp_path):
    """Docker's default capabilities lack CAP_SYS_PTRACE: a root worker can't read the comfyui user's
    /proc/<pid>/fd there, so the socket's owner in /proc/net/tcp is what says it is ComfyUI's."""
    import pwd

    try:
        account = pwd.getpwnam("comfyui")
    except KeyError:
        pytest.skip("no comfyui user on this machine")
    code = (
        "import socket, sys; s = socket.socket(); s.bind(('127.0.0.1', 0)); s.listen(); "
        "print(s.getsockname()[1], flush=True); sys.stdin.read()"
    )
    child = subprocess.Popen(
        [sys.executable, "-c", code],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        user=account.pw_uid,
        group=account.pw_gid,
        extra_groups=[],
    )
    try:
        assert child.stdout is not None
        port = int(child.stdout.readline())
        check = textwrap.dedent(f"""
            import json
            from handler import listener
            print(json.dumps([listener.foreign_listener({port}, [{child.pid}], {account.pw_uid}) is None,
                              listener.foreign_listener({port}, [{child.pid}], None) is None,
                              listener.foreign_listener({port}, [], {account.pw_uid}) is None]))
        """)
        # the worker as a container's root: no CAP_SYS_PTRACE, so the child's fds can't be read
        seen = subprocess.run(
            ["setpriv", "--inh-caps=-sys_ptrace", "--bounding-set=-sys_ptrace", sys.executable, "-c", check],
            capture_output=True,
            text=True,
            check=True,
            cwd=Path(__file__).resolve().parents[2],
        )
        by_uid, by_fds_only, by_uid_without_pids = json.loads(seen.stdout)
        assert not by_fds_only, "the fds were readable: this test no longer shows the container's case"
        assert by_uid and by_uid_without_pids
    finally:
        child.kill()
        child.wait()


def test_a_fallback_user_not_comfyuis_own_is_never_killed_wholesale():
    """`nobody` (the fallback when COMFY_RUN_AS's user is missing) may run a host's daemons: the reaper
    then kills only ComfyUI's tree and the orphans re-parented to the worker, and says so."""
    import pwd

    nobody = pwd.getpwnam("nobody").pw_uid
    shared = reaper.Reaper(nobody, "ComfyUI runs as nobody, a user not its own")
    assert shared.uid is None
    report = shared.report(4096)
    assert report["user_kill"] is False and report["max_procs"] == 4096
    assert report["why_not"].startswith("ComfyUI runs as nobody, a user not its own: only its tree")
    assert reaper.Reaper(nobody).uid == nobody  # a dedicated user is killed wholesale
