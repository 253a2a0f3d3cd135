"""Pack resolution by evidence against ComfyUI-Manager's real lists (a snapshot named by COMFY_RUNPOD_ECOSYSTEM:
../shared/ecosystem, exported by the Makefile and .ci/run), and the client's fetch-and-cache of those lists."""

from __future__ import annotations

import json
import os
import threading
from functools import cache
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from client.ecosystem_cache import MAX_AGE_S, load_ecosystem
from client.errors import UsageError
from workflows.ecosystem import FILES, Ecosystem, NodeEvidence
from workflows.editor_save import node_types, saved_models
from workflows.pack_plan import plan_packs
from workflows.registry import default_registry

SAVES = Path(__file__).parent / "fixtures" / "editor_saves"


def ecosystem_dir() -> Path:
    raw = os.environ.get("COMFY_RUNPOD_ECOSYSTEM")
    if not raw or not (Path(raw) / FILES[0]).is_file():
        pytest.fail(
            "COMFY_RUNPOD_ECOSYSTEM must name a directory with ComfyUI-Manager's lists (make test sets it to "
            "../shared/ecosystem when that exists)",
            pytrace=False,
        )
    return Path(raw)


@cache
def _ecosystem() -> Ecosystem:
    return load_ecosystem(directory=ecosystem_dir()).ecosystem


@pytest.fixture
def eco() -> Ecosystem:
    return _ecosystem()


def test_a_name_only_a_pattern_matches_goes_to_the_pack_people_use_not_the_copy_that_lists_it(eco):
    """rgthree's map entry lists Python class names; "Seed (rgthree)" is listed exactly only by a copy."""
    res = eco.resolve_node("Seed (rgthree)")
    assert res.repo == "https://github.com/rgthree/rgthree-comfy" and "most-starred" in res.reason
    assert [c.repo for c in res.runners_up] == ["https://github.com/aining2022/ComfyUI_Swwan"]


def test_preemptions_and_core_win_and_an_unknown_node_is_unresolved(eco):
    assert eco.resolve_node("UnetLoaderGGUF").repo == "https://github.com/city96/ComfyUI-GGUF"
    assert eco.resolve_node("KSampler").is_core
    res = eco.resolve_node("ColorMatchByMoonlightXYZ")
    assert res.repo is None and "node map" in res.reason


def test_the_saves_evidence_beats_stars(eco):
    assert eco.resolve_node("ColorMatch").repo == "https://github.com/kijai/ComfyUI-KJNodes"
    swwan = "https://github.com/aining2022/ComfyUI_Swwan"
    assert eco.resolve_node("ColorMatch", NodeEvidence(aux_id="aining2022/ComfyUI_Swwan")).repo == swwan
    used = eco.resolve_node("ColorMatch", used=[swwan])
    assert used.repo == swwan and "uses this pack" in used.reason
    assert eco.resolve_node("Anything", NodeEvidence(cnr_id="comfyui_essentials")).repo.endswith("/ComfyUI_essentials")
    assert eco.resolve_node("Anything", NodeEvidence(cnr_id="comfy-core", ver="0.3.75")).is_core


def test_model_list_records_give_url_and_folder(eco):
    record = eco.model("t5-v1_1-xxl-encoder-Q3_K_L.gguf")
    assert record is not None and record.folder == "text_encoders" and record.url.startswith("https://huggingface.co/")
    assert record.approx_bytes == 2_460_000_000


def test_a_saves_packs_are_planned_from_its_own_records(eco):
    save = json.loads((SAVES / "four_packs.json").read_text())
    plan = plan_packs(node_types(save), eco, default_registry())
    by_name = {p.name: p for p in plan.packs}
    assert set(by_name) == {"ComfyUI-GGUF", "rgthree-comfy", "ComfyUI_essentials", "ComfyUI-KJNodes"}
    assert by_name["ComfyUI-KJNodes"].nodes == ["ColorMatch", "GetImageSizeAndCount"]
    assert by_name["rgthree-comfy"].saved_commit == "13b4399c00b5ef5a97b1b6800fc1185874740f5d"
    assert (
        by_name["ComfyUI_essentials"].saved_versions == ["1.1.0"] and by_name["ComfyUI_essentials"].saved_commit is None
    )
    assert {"KSampler", "DualCLIPLoader", "GetImageSize"} <= set(plan.core) and not plan.unresolved
    assert saved_models(save)["ae.safetensors"].directory == "vae"
    override = plan_packs(
        {"ColorMatch": NodeEvidence()}, eco, default_registry(), {"ColorMatch": "okdalto/ComfyUI-Color-Matcher"}
    )
    assert override.packs[0].repo == "https://github.com/okdalto/ComfyUI-Color-Matcher"
    assert override.packs[0].reasons["ColorMatch"] == "chosen with --pack"


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass


def test_the_lists_are_fetched_cached_refreshed_and_a_failed_download_falls_back(tmp_path):
    """From a channel (a local server with the same files), into the cache; fresh copies are not fetched
    again; --refresh-ecosystem fetches; a failed download uses the cached copy and says so."""
    source = ecosystem_dir()
    served: list[str] = []

    class Handler(_Quiet):
        def __init__(self, *a, **kw):
            super().__init__(*a, directory=str(source), **kw)

        def do_GET(self):
            served.append(self.path)
            super().do_GET()

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    channel = f"http://127.0.0.1:{server.server_address[1]}"
    cache_dir = tmp_path / "cache"
    try:
        first = load_ecosystem(cache=cache_dir, channel=channel)
        assert sorted(served) == sorted(f"/{f}" for f in FILES) and first.notes == []
        assert first.ecosystem.resolve_node("UnetLoaderGGUF").repo.endswith("/ComfyUI-GGUF")
        load_ecosystem(cache=cache_dir, channel=channel)
        assert len(served) == len(FILES)  # a day old at most: not fetched again
        load_ecosystem(cache=cache_dir, channel=channel, refresh=True)
        assert len(served) == 2 * len(FILES)
    finally:
        server.shutdown()
        server.server_close()
    stale = load_ecosystem(
        cache=cache_dir, channel=channel, now=(cache_dir / FILES[0]).stat().st_mtime + MAX_AGE_S + 60
    )
    assert len(stale.notes) == len(FILES) and "using the cached copy" in stale.notes[0]
    with pytest.raises(UsageError) as exc:
        load_ecosystem(cache=tmp_path / "empty", channel=channel)
    assert "COMFY_RUNPOD_ECOSYSTEM" in (exc.value.fix or "")


@pytest.mark.parametrize(
    ("text", "says"),
    [('{"https://github.com/a/b": [["X"], {}]', "cannot be read as JSON"), ("[1, 2]", "a JSON object was expected")],
)
def test_a_truncated_or_foreign_list_is_a_usage_error_naming_the_file(tmp_path, text, says):
    """A damaged cached copy (or one in COMFY_RUNPOD_ECOSYSTEM) is named, with what to do; never a traceback."""
    for name in FILES:
        (tmp_path / name).write_text("{}")
    (tmp_path / FILES[0]).write_text(text)
    with pytest.raises(UsageError) as exc:
        load_ecosystem(directory=tmp_path)
    assert says in exc.value.message and FILES[0] in exc.value.message
    with pytest.raises(UsageError) as cached:
        load_ecosystem(cache=tmp_path, now=(tmp_path / FILES[0]).stat().st_mtime)
    assert "--refresh-ecosystem" in (cached.value.fix or "")


@pytest.mark.parametrize("aux_id", ["/", "evil/../../x", "owner/re po", "a/b/c", "../.."])
def test_an_aux_id_that_is_not_owner_repo_is_not_evidence(eco, aux_id):
    """A save's aux_id names a GitHub repository only as owner/repo; anything else is ignored, and the
    node is resolved by ComfyUI-Manager's map as if the save recorded nothing."""
    res = eco.resolve_node("UnetLoaderGGUF", NodeEvidence(aux_id=aux_id))
    assert res.repo == "https://github.com/city96/ComfyUI-GGUF", res


def test_a_fork_and_its_original_in_one_save_are_not_both_installed_into_one_folder(eco):
    """Both would be custom_nodes/ComfyUI-KJNodes: the second is unresolved, with how to choose."""
    plan = plan_packs(
        {
            "ColorMatch": NodeEvidence(aux_id="kijai/ComfyUI-KJNodes"),
            "GetImageSizeAndCount": NodeEvidence(aux_id="someone/ComfyUI-KJNodes"),
        },
        eco,
        default_registry(),
    )
    assert [p.repo for p in plan.packs] == ["https://github.com/kijai/ComfyUI-KJNodes"]
    why = plan.unresolved["GetImageSizeAndCount"]
    assert "same folder" in why and "--pack" in why


def test_a_fork_of_a_registered_pack_is_not_given_the_originals_pin(eco):
    """The registry pins Kosinkadink's ComfyUI-VideoHelperSuite; a save recording a fork of the same name
    must not be installed from the original's pin (or snapshot) under its name."""
    fork = plan_packs(
        {"VHS_VideoCombine": NodeEvidence(aux_id="someone/ComfyUI-VideoHelperSuite")}, eco, default_registry()
    )
    assert fork.packs == [] and "where the registry installs" in fork.unresolved["VHS_VideoCombine"]
    own = plan_packs({"VHS_VideoCombine": NodeEvidence()}, eco, default_registry())
    assert own.packs[0].registry_commit is not None and not own.unresolved
