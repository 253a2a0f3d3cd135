"""The pure halves of the security features, with no server: secrets, paths, policy, limits, expansion
count, payload prediction, S3 keys, and the cleanup sweep on real temporary directories."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest

from handler.config import Settings
from handler.confine import comfy_environment
from handler.generate import response_size, s3_key
from handler.jobfiles import JobActivity, JobFiles
from handler.outputs import OutputFile
from tests.security.test_probes import nested_subgraphs
from workflows.paths import FileRef, PathFact, file_inputs, path_findings, pure_problem
from workflows.policy import UNSAFE_NODES, JobPolicy, limit_findings, policy_findings
from workflows.secrets import MASK, credential_parts, is_secret_name, redact, redact_data, secret_values
from workflows.ui_convert import MAX_UI_NODES, expanded_size, ui_to_api

# --- secrets -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name", ["RUNPOD_API_KEY", "HF_TOKEN", "BUCKET_SECRET_ACCESS_KEY", "DB_PASSWORD", "GITHUBTOKEN", "my_apikey"]
)
def test_names_that_mark_a_secret(name):
    assert is_secret_name(name)


@pytest.mark.parametrize("name", ["PATH", "PWD", "OLDPWD", "TOKENIZERS_PARALLELISM", "KEYBOARD", "HOME", "COMFY_DIR"])
def test_names_that_do_not(name):
    assert not is_secret_name(name)


def test_secret_values_include_listed_names_and_skip_trivial_values():
    env = {"HF_TOKEN": "hf_abcdef123", "SHORT_KEY": "1", "PLAIN_VAR": "plain-value-1", "SECRET_ENV_VARS": "PLAIN_VAR"}
    assert set(secret_values(env)) == {"hf_abcdef123", "plain-value-1"}  # not "PLAIN_VAR": a name


@pytest.mark.parametrize(
    ("value", "parts"),
    [
        ("https://mirror:sekrit123@hf.example", ["mirror:sekrit123", "sekrit123"]),
        (
            "postgres://app:p%40ss-word@db/x?sslmode=require",
            ["app:p%40ss-word", "app:p@ss-word", "p%40ss-word", "p@ss-word"],
        ),
        ("https://ghp_tokenvalue1@github.com/o/r.git", ["ghp_tokenvalue1"]),  # a token as the user name
        ("https://h/x?access_token=abcdefgh&page=2", ["abcdefgh"]),
        ("host=db user=app password=hunter22 dbname=x", ["hunter22"]),  # a libpq connection string
        ("Bearer abcdef123456", ["abcdef123456"]),
    ],
)
def test_a_value_carries_credentials_by_its_shape(value, parts):
    assert credential_parts(value) == parts


@pytest.mark.parametrize(
    "value",
    [
        "https://hf-mirror.example",
        "/usr/bin:/bin",
        "rs=0:di=01;34",
        "C.UTF-8",
        "user@example.com",
        "max_split_size_mb:512",
    ],
)
def test_a_value_without_credentials(value):
    assert credential_parts(value) == []


def test_a_value_carrying_credentials_is_a_secret_whatever_its_name():
    env = {"HF_ENDPOINT": "https://u:sekrit123@mirror.invalid", "DATABASE_URL": "postgres://a:pw@db/x", "P": "/bin"}
    values = secret_values(env)
    assert {"https://u:sekrit123@mirror.invalid", "u:sekrit123", "sekrit123", "postgres://a:pw@db/x"} <= set(values)
    assert "pw" not in values and "/bin" not in values  # too short to mask alone; not a credential
    s = Settings.from_env(env)
    line = f"HF_ENDPOINT={env['HF_ENDPOINT']} and again: sekrit123"
    assert redact(line, s.secrets()) == f"HF_ENDPOINT={MASK} and again: {MASK}"


def test_redact_masks_any_urls_password_even_one_no_environment_holds():
    assert redact("GET https://bob:hunter2@x.example/a failed", []) == f"GET https://bob:{MASK}@x.example/a failed"
    assert redact_data({"e": ["git clone https://ghp_abc@github.com/o/r"]}, []) == {
        "e": [f"git clone https://{MASK}@github.com/o/r"]
    }
    assert (
        redact("mail bob@example.com at https://example.com/a@b", [])
        == "mail bob@example.com at https://example.com/a@b"
    )


def test_redact_data_masks_keys_and_values_but_not_file_content():
    secrets = ("s3cr3t-value",)
    data = {"a": ["x s3cr3t-value y", {"s3cr3t-value": 1}], "base64": "s3cr3t-value", "n": 3}
    out = redact_data(data, secrets, frozenset({"base64"}))
    assert out == {"a": [f"x {MASK} y", {MASK: 1}], "base64": "s3cr3t-value", "n": 3}


def test_settings_collect_every_secret_of_the_environment():
    s = Settings.from_env({"RUNPOD_API_KEY": "rpa_123456789", "BUCKET_ACCESS_KEY_ID": "user_abc123", "X": "y"})
    assert set(s.secrets()) == {"rpa_123456789", "user_abc123"}


def test_comfyui_is_started_without_secrets_or_worker_only_variables():
    env = {
        "PATH": "/bin",
        "VHS_STRICT_PATHS": "1",
        "HF_HOME": "/cache",
        "PYTHONPATH": "/repo",
        "RUNPOD_API_KEY": "k",
        "RUNPOD_WEBHOOK_GET_JOB": "u",
        "BUCKET_ENDPOINT_URL": "e",
        "CIVITAI_TOKEN": "t",
        "SECRET_ENV_VARS": "ODD_NAME",
        "ODD_NAME": "v",
        "DATABASE_URL": "postgres://user:pw@db/x",  # a password under a name that doesn't look secret
        "SMTP_URL": "smtp://u:p@mail",
        "HF_HUB_TOKEN_PATH": "/secrets/hf",
        "CUDA_VISIBLE_DEVICES": "0",
        "PYTHONUNBUFFERED": "1",
        "LC_ALL": "C.UTF-8",
        "COMFY_ENV_ALLOW": "MY_PACK_SETTING",
        "MY_PACK_SETTING": "on",
        # credentials by their shape, under names ComfyUI's tools document reading
        "HF_ENDPOINT": "https://mirror:sekrit123@hf.example",
        "HF_INFERENCE_ENDPOINT": "https://hf.example/?api_key=abcdefgh",
        "PYTORCH_CUDA_ALLOC_CONF": "expandable_segments:True",
        "HF_HUB_OFFLINE": "1",
        # names under a tool's prefix that the tool never reads
        "HF_MIRROR_LOGIN": "mirror",
        "COMFYUI_ADMIN": "x",
        "PYTHON_KEYRING_BACKEND": "k",
        "TORCHSERVE_URL": "https://t",
    }
    assert comfy_environment({**env, "HF_ENDPOINT": "https://hf.example"})["HF_ENDPOINT"] == "https://hf.example"
    assert comfy_environment(env) == {
        "PYTORCH_CUDA_ALLOC_CONF": "expandable_segments:True",
        "HF_HUB_OFFLINE": "1",
        "PATH": "/bin",
        "VHS_STRICT_PATHS": "1",
        "HF_HOME": "/cache",
        "CUDA_VISIBLE_DEVICES": "0",
        "PYTHONUNBUFFERED": "1",
        "LC_ALL": "C.UTF-8",
        "MY_PACK_SETTING": "on",
    }


def test_presigned_url_lifetime_is_a_setting():
    assert Settings.from_env({}).presign_expires_s == 3600  # native mode: one hour
    compat = {"RESPONSE_FORMAT": "worker-comfyui"}
    assert Settings.from_env(compat).presign_expires_s == 7 * 24 * 3600  # the official worker's lifetime
    assert Settings.from_env({"PRESIGN_EXPIRES_S": "600"}).presign_expires_s == 600
    assert Settings.from_env({"PRESIGN_EXPIRES_S": "99999999"}).presign_expires_s == 7 * 24 * 3600  # SigV4 maximum


# --- paths ---------------------------------------------------------------------------------------


def ref(value: str, kind: str = "name", base: str = "input") -> FileRef:
    return FileRef("1", "LoadImage", "image", value, base, kind, value)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "value",
    [
        "/etc/passwd",
        "\\\\server\\share",
        "C:\\x.png",
        "../x.png",
        "a/../../x",
        "http://h/x",
        "S3://b/k",
        "data:,x",
        "file:/etc/passwd",
        "~/x",
        "a\x00b",
        ' "../x" ',
    ],
)
def test_pure_refusals(value):
    assert pure_problem(ref(value)) is not None


@pytest.mark.parametrize("value", ["x.png", "sub/x.png", "name with spaces.png", "..hidden.png", "a..b.png"])
def test_plain_names_pass_to_the_disk_check(value):
    assert pure_problem(ref(value)) is None


def test_vhs_paths_must_be_absolute():
    assert pure_problem(ref("input/x.mp4", "path", "any")) is not None
    assert pure_problem(ref("/comfyui/input/x.mp4", "path", "any")) is None


def test_annotations_pick_the_directory_and_facts_decide():
    wf = {
        "1": {"class_type": "LoadImage", "inputs": {"image": "x.png [output]"}},
        "2": {"class_type": "SomePack", "inputs": {"subfolder": "../up"}},
    }
    refs = list(file_inputs(wf))
    assert [(r.base, r.relative) for r in refs] == [("output", "x.png"), ("any", "../up")]
    assert [f.node_id for f in path_findings(wf, None)] == ["2"]
    found = path_findings(wf, {("output", "x.png"): PathFact(inside=False)})
    assert [f.node_id for f in found] == ["1", "2"] and "symlink" in found[0].message
    assert "FIFO" in path_findings(wf, {("output", "x.png"): PathFact(inside=True, special=True)})[0].message


# --- policy and limits ---------------------------------------------------------------------------


def test_unsafe_nodes_in_registered_workflows_only_when_overridden():
    wf = {"1": {"class_type": "VHS_LoadVideoPath", "inputs": {"video": "/comfyui/input/a.mp4"}}}
    policy = JobPolicy()
    assert policy_findings(wf, policy, origin="registered") == []
    assert policy_findings(wf, policy, origin="registered", overridden={"1": frozenset({"video"})})
    assert policy_findings(wf, policy, origin="inline")[0].code == "POLICY_DENIED"
    assert policy_findings(wf, JobPolicy(allow_unsafe=frozenset({"*"})), origin="inline") == []
    assert policy_findings(wf, JobPolicy(allow_unsafe=frozenset({"VHS_LoadVideoPath"})), origin="editor") == []


def test_every_unsafe_node_with_a_path_input_is_path_checked():
    from workflows.paths import FILE_INPUTS

    assert {"VHS_PruneOutputs", "Load3D"} | set(FILE_INPUTS) >= set(UNSAFE_NODES)


def test_limits():
    wf = {"1": {"class_type": "X", "inputs": {"width": 5000, "height": 64, "batch_size": 65, "length": 2000}}}
    found = limit_findings(wf, JobPolicy())
    assert sorted(f.input for f in found) == ["batch_size", "length", "width"]
    assert all(f.code == "LIMIT_EXCEEDED" for f in found)
    assert limit_findings(wf, JobPolicy(max_side=8192, max_batch=128, max_frames=4096)) == []
    linked = {
        "1": {"class_type": "PrimitiveInt", "inputs": {"value": 9000}},
        "2": {"class_type": "EmptyImage", "inputs": {"width": ["1", 0], "height": 8}},
    }
    assert [f.node_id for f in limit_findings(linked, JobPolicy())] == ["2"]


# --- editor expansion ----------------------------------------------------------------------------


def test_nested_subgraphs_are_counted_without_expanding():
    ui = nested_subgraphs(depth=16, fan_out=10)  # 10^15 nodes
    started = time.perf_counter()
    assert expanded_size(ui["nodes"], {d["id"]: d for d in ui["definitions"]["subgraphs"]}) == MAX_UI_NODES + 1
    result = ui_to_api(ui, {"EmptyImage": {"input": {"required": {}}}})
    assert time.perf_counter() - started < 1
    assert result.workflow == {} and result.problems[0].code == "LIMIT_EXCEEDED"


def test_small_nested_subgraphs_still_convert():
    ui = nested_subgraphs(depth=3, fan_out=3)
    assert expanded_size(ui["nodes"], {d["id"]: d for d in ui["definitions"]["subgraphs"]}) == 9


# --- payload and S3 keys -------------------------------------------------------------------------


def output(tmp_path: Path, kind: str, name: str, size: int, subfolder: str = "job_k") -> OutputFile:
    path = tmp_path / name
    path.write_bytes(b"\0" * size)
    mime = {"video": "video/mp4", "image": "image/png"}[kind]
    return OutputFile("9", kind, name, subfolder, mime, path, size, {"width": 8, "height": 8})


def test_response_size_is_never_below_the_real_body(tmp_path):
    import base64

    from workflows.pipeline import job_response as _response
    from workflows.request import GenerateRequest

    outs = [output(tmp_path, "video", "v.mp4", 30_001), output(tmp_path, "image", "i.png", 10_000)]
    texts = [{"node_id": "3", "kind": "text", "mime": "text/plain", "text": 'é"\n' * 5000, "size_bytes": 20000}]
    delivered = [{**o.describe(), "base64": base64.b64encode(o.path.read_bytes()).decode()} for o in outs] + texts
    timings = {"nodes_ms": {str(i): 1.5 for i in range(50)}, "total_ms": 1.0}
    body = _response(None, GenerateRequest(workflow={}), "p" * 32, delivered, timings, False)
    predicted = response_size(outs, texts, False, timings["nodes_ms"])
    actual = len(json.dumps(body).encode())
    assert actual <= predicted < actual + 8192  # the video's base64 counted twice, text as JSON


def test_s3_keys_keep_subfolders(tmp_path):
    a = output(tmp_path, "image", "x.png", 1, "job_k/a")
    b = output(tmp_path, "image", "x.png", 1, "job_k/b")
    c = output(tmp_path, "image", "x.png", 1, "job_k")
    c.source = "temp"
    keys = {s3_key("J", "job_k", o) for o in (a, b, c)}
    assert keys == {"J/a/x.png", "J/b/x.png", "J/temp/x.png"}


# --- cleanup -------------------------------------------------------------------------------------


def test_every_file_a_job_wrote_is_removed_wherever_it_is(tmp_path):
    roots = tuple(tmp_path / d for d in ("input", "output", "temp"))
    for r in roots:
        r.mkdir()
    (roots[0] / "kept.png").write_bytes(b"x")
    with JobFiles(JobActivity(), roots=roots):
        (roots[1] / "dataset" / "deep").mkdir(parents=True)
        (roots[1] / "dataset" / "deep" / "a.png").write_bytes(b"x")
        (roots[2] / "stray.latent").write_bytes(b"x")
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["input", "kept.png", "output", "temp"]


def test_the_sweep_waits_for_concurrent_jobs(tmp_path):
    roots, activity = (tmp_path,), JobActivity()  # two jobs on one ComfyUI share its activity
    first_done, second_wrote = threading.Event(), threading.Event()
    seen: list[bool] = []

    def second() -> None:
        with JobFiles(activity, roots=roots):
            (tmp_path / "b.png").write_bytes(b"x")
            second_wrote.set()
            first_done.wait(5)
            seen.append((tmp_path / "b.png").exists())  # the first job's end did not sweep it away

    t = threading.Thread(target=second)
    with JobFiles(activity, roots=roots):
        t.start()
        second_wrote.wait(5)
        (tmp_path / "a.png").write_bytes(b"x")
    first_done.set()
    t.join(5)
    assert seen == [True] and list(tmp_path.iterdir()) == []


def test_the_disk_budget_counts_what_a_job_writes_where_confine_write_lets_comfyui(tmp_path):
    """CONFINE_WRITE opens a path to ComfyUI at will: what a prompt writes there is on the same disk and
    counts against JOB_DISK_MB like its output (a budget that skipped it would be a way around it)."""
    from handler.bounds import DiskWatch
    from handler.runtime import Runtime

    extra = tmp_path / "extra"
    extra.mkdir()
    env = {"COMFY_DIR": str(tmp_path / "comfy"), "CONFINE_WRITE": str(extra), "JOB_DISK_MB": "1"}
    watch = DiskWatch(Runtime(Settings.from_env(env)), "prompt")
    assert not watch.over()
    (extra / "big.bin").write_bytes(b"\1" * (2 * 1024 * 1024))
    assert watch.over() and watch.written >= 2 * 1024 * 1024
