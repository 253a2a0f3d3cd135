"""A model file's size and sha256 (client/hf_metadata.py) against the local Hugging Face stand-in
(tests/hf_standin.py): every failure of the Hub or the network is a problem in words, never an exception."""

from __future__ import annotations

import socket
import threading
from pathlib import Path

from client.hf_metadata import file_facts
from tests.hf_standin import HubFile, HubStandIn

LFS = HubFile("owner/models", "vae/ae.safetensors", b"V" * 1500)
GIT = HubFile("owner/models", "taesd.safetensors", b"small" * 10, lfs=False)


def _url(f: HubFile) -> str:
    return f"https://huggingface.co/{f.repo}/resolve/main/{f.path}"


def test_an_lfs_file_has_its_size_and_sha256_from_the_metadata_alone():
    with HubStandIn([LFS]) as hub:
        facts = file_facts(_url(LFS), endpoint=hub.url)
    assert (facts.size_bytes, facts.sha256, facts.problem) == (len(LFS.data), LFS.sha256, None)
    assert not any(r.startswith("GET /cdn/") for r in hub.requests)  # nothing downloaded


def test_a_git_stored_file_is_hashed_only_on_the_opt_in_download():
    with HubStandIn([GIT]) as hub:
        plain = file_facts(_url(GIT), endpoint=hub.url)
        hashed = file_facts(_url(GIT), endpoint=hub.url, download_sha256=True)
    assert plain.sha256 is None and "--download-sha256" in (plain.problem or "")
    assert (hashed.size_bytes, hashed.sha256, hashed.problem) == (len(GIT.data), GIT.sha256, None)


def test_an_unreachable_hub_is_a_problem_not_a_crash():
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{s.getsockname()[1]}"
    facts = file_facts(_url(LFS), endpoint=closed, timeout_s=5)
    assert facts.sha256 is None and "could not be read" in (facts.problem or ""), facts


def test_a_hub_that_never_answers_times_out_into_a_problem():
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    accepted: list[socket.socket] = []
    thread = threading.Thread(target=lambda: accepted.append(server.accept()[0]), daemon=True)
    thread.start()
    try:
        facts = file_facts(_url(LFS), endpoint=f"http://127.0.0.1:{server.getsockname()[1]}", timeout_s=1)
    finally:
        for conn in accepted:
            conn.close()
        server.close()
    assert facts.sha256 is None and "could not be read" in (facts.problem or ""), facts


def test_a_file_url_is_never_read(tmp_path: Path):
    secret = tmp_path / "secret.safetensors"
    secret.write_bytes(b"secret")
    facts = file_facts(secret.as_uri(), download_sha256=True)
    assert facts.sha256 is None and facts.size_bytes is None and "could not be read" in (facts.problem or "")
