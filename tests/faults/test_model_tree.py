"""workflows.model_tree (pure) and the facts handler/diagnose.py gathers for it, on a real directory tree."""

from __future__ import annotations

import os
import struct
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from handler.facts import TreeFacts, file_facts, off_layout_models_dirs, scan_model_files
from tests.faults.catalogue import safetensors_bytes
from workflows.model_tree import header_problem, layout_findings, tree_findings


@pytest.mark.parametrize(
    ("name", "data", "problem"),
    [
        ("ok.safetensors", safetensors_bytes(), None),
        ("short.safetensors", b"\x01\x02", "too few"),
        ("cut.safetensors", safetensors_bytes(4, declared_end=4096), "truncated download"),
        ("html.safetensors", b"<!DOCTYPE html><html>" + b" " * 64, "more than the file"),
        ("badjson.safetensors", struct.pack("<Q", 5) + b"{oops", "not valid JSON"),
        ("ok.gguf", b"GGUF" + struct.pack("<I", 3) + b"\0" * 16, None),
        ("v9.gguf", b"GGUF" + struct.pack("<I", 9) + b"\0" * 16, "version field"),
        ("page.gguf", b"<html>", "magic"),
        ("pickle.ckpt", b"\x80\x02}q\x00.", None),
        ("zip.pt", b"PK\x03\x04" + b"\0" * 40 + b"PK\x05\x06" + b"\0" * 18, None),
        ("cutzip.pth", b"PK\x03\x04" + b"\0" * 100, "end record"),
        ("json.ckpt", b'{"error": "unauthorized"}', "holds text"),
        ("noise.ckpt", b"\x00\x01\x02\x03", "neither"),
        ("other.bin", b"anything", None),  # formats without a header we can check are not judged
    ],
)
def test_headers_are_judged_from_their_first_and_last_bytes(tmp_path: Path, name, data, problem):
    path = tmp_path / name
    path.write_bytes(data)
    [fact] = file_facts([("checkpoints", name, str(path), len(data), "volume")]) or [None]
    if fact is None:  # not a checked extension
        assert problem is None
        return
    found = header_problem(fact.path, fact.size, fact.head, fact.tail, fact.header)
    assert (found is None) if problem is None else (problem in found), found


def test_scan_collects_what_comfyui_would_skip_and_never_raises(tmp_path: Path):
    models = tmp_path / "models"
    (models / "checkpoints").mkdir(parents=True)
    (models / "checkpoints/a.safetensors").write_bytes(safetensors_bytes())
    (models / "vae").write_text("not a folder")
    os.symlink(tmp_path / "missing", models / "loras")
    os.symlink(tmp_path / "missing.safetensors", models / "checkpoints/gone.safetensors")
    os.mkfifo(models / "checkpoints/fifo.ckpt")
    (models / "checkpoints/empty.safetensors").write_bytes(b"")
    facts = TreeFacts()
    found = scan_model_files([("volume", models)], facts)
    facts.files += file_facts(found)
    codes = sorted((f.code, Path(f.path or "").name) for f in tree_findings(facts.folders, facts.files))
    assert codes == [
        ("MODEL_FILE_DANGLING_LINK", "gone.safetensors"),
        ("MODEL_FILE_EMPTY", "empty.safetensors"),
        ("MODEL_FILE_NOT_REGULAR", "fifo.ckpt"),
        ("MODEL_FOLDER_DANGLING_LINK", "loras"),
        ("MODEL_FOLDER_IS_FILE", "vae"),
    ]
    assert sorted(name for _, name, _, _, _ in found) == ["a.safetensors", "empty.safetensors"]


def test_unreadable_folder_is_named_with_a_chmod_fix():
    """Staged on disk: a model folder without read permission. The suite runs as root, which reads
    anything, so the scan runs with the effective uid of `nobody` for its duration."""
    import shutil
    import tempfile

    root = Path(tempfile.mkdtemp(prefix="i13-unreadable-"))
    root.chmod(0o755)
    locked = root / "models/loras"
    locked.mkdir(parents=True)
    (root / "models").chmod(0o755)
    (locked / "a.safetensors").write_bytes(safetensors_bytes())
    locked.chmod(0)
    facts = TreeFacts()
    try:
        if os.geteuid() == 0:
            os.seteuid(65534)
        try:
            found = scan_model_files([("volume", root / "models")], facts)
        finally:
            if os.getuid() == 0:
                os.seteuid(0)
    finally:
        locked.chmod(0o755)
        shutil.rmtree(root)
    assert found == [] and [(f.kind, f.path) for f in facts.folders] == [("unreadable", str(locked))]
    [finding] = tree_findings(facts.folders, [])
    assert finding.code == "MODEL_FOLDER_UNREADABLE" and f"chmod -R a+rX {locked}" in finding.fix


def test_layouts_off_the_scanned_ones_are_found_in_any_case(tmp_path: Path):
    for rel in ("models/checkpoints", "ComfyUI/models/vae", "comfyui/models/loras", "a/b/Models/VAE", "x/models/none"):
        (tmp_path / rel).mkdir(parents=True)
    (tmp_path / "loras").mkdir()
    found = sorted(off_layout_models_dirs(tmp_path))
    assert found == [".", "a/b/Models", "comfyui/models"]
    paths = sorted(f.path for f in layout_findings(found, str(tmp_path)))
    assert paths == sorted([str(tmp_path), f"{tmp_path}/a/b/Models", f"{tmp_path}/comfyui/models"])


@settings(max_examples=300, deadline=None)
@given(
    ext=st.sampled_from(["safetensors", "sft", "gguf", "ckpt", "pt", "pth", "bin"]),
    data=st.binary(max_size=64),
    header=st.one_of(st.none(), st.binary(max_size=64), st.just(b"[" * 5000)),
    size=st.integers(min_value=0, max_value=2**64),
)
def test_header_judgement_never_raises_on_arbitrary_bytes(ext, data, header, size):
    result = header_problem(f"x.{ext}", size, data[:16], data[-22:], header)
    assert result is None or isinstance(result, str)


def test_layouts_from_a_bucket_listing_match_the_directory_walk(tmp_path: Path):
    from workflows.model_tree import layouts_from_paths

    files = [
        "models/checkpoints/a.safetensors",
        "ComfyUI/models/vae/b.safetensors",
        "comfyui/models/loras/c.safetensors",
        "a/b/Models/VAE/d.safetensors",
        "loras/e.safetensors",
        "x/models/none/f.bin",
        "a/b/c/models/loras/g.safetensors",  # deeper than the walk looks
        "checkpoints/models/vae/h.safetensors",  # inside a model folder: the walk doesn't descend
        ".cache/models/vae/i.safetensors",  # a hidden folder: neither
    ]
    for rel in files:
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(b"x")
    expected = [".", "a/b/Models", "comfyui/models"]
    assert layouts_from_paths(files) == sorted(off_layout_models_dirs(tmp_path)) == expected


@pytest.mark.parametrize(("data_len", "declared", "problem"), [(3000, 3000, None), (64, 3000, "truncated download")])
def test_a_big_header_is_judged_from_its_end_without_parsing_it(tmp_path: Path, data_len, declared, problem):
    """A full checkpoint's header is hundreds of KB: the gatherer reads only its last bytes."""
    import json

    count = 3000  # about 200 KB of header, tensors in data order as the safetensors library writes them
    step = declared // count or 1
    tensors = {
        f"layer{i:05d}.weight": {"dtype": "U8", "shape": [step], "data_offsets": [i * step, (i + 1) * step]}
        for i in range(count)
    }
    tensors[f"layer{count - 1:05d}.weight"]["data_offsets"][1] = declared
    header = json.dumps(tensors).encode()
    path = tmp_path / "big.safetensors"
    path.write_bytes(struct.pack("<Q", len(header)) + header + b"\0" * data_len)
    [fact] = file_facts([("checkpoints", path.name, str(path), path.stat().st_size, "volume")])
    assert fact.header is not None and len(fact.header) < len(header)  # only the end was read
    found = header_problem(fact.path, fact.size, fact.head, fact.tail, fact.header)
    assert (found is None) if problem is None else (problem in found), found


def test_a_volume_listing_names_an_off_layout_tree_once_and_loose_files_each():
    from workflows.registry import default_registry
    from workflows.volume_index import VolumeObject, judge_volume

    keys = [
        "comfyui/models/loras/c.safetensors",  # a third layout
        "comfyui/models/vae/d.safetensors",
        "loras/e.safetensors",  # model folders straight on the root
        "workspace/upscale_models/extra.pth",  # a loose file in no models tree
        "models/mystery/thing.safetensors",  # inside the scanned layout, a folder ComfyUI skips
    ]
    result = judge_volume([VolumeObject(k, 10) for k in keys], default_registry(), ["smoke_image"])
    layouts = sorted(f["path"] for f in result["findings"] if f["code"] == "MODEL_LAYOUT_NOT_SCANNED")
    assert layouts == ["/runpod-volume", "/runpod-volume/comfyui/models"]
    not_seen = sorted(f["path"] for f in result["findings"] if f["code"] == "MODEL_NOT_SEEN")
    assert not_seen == [
        "/runpod-volume/models/mystery/thing.safetensors",
        "/runpod-volume/workspace/upscale_models/extra.pth",
    ]
