"""The request contract: a job's input validated into typed requests. Pure; the worker and the client's
direct mode both parse with it, so they accept exactly the same keys.

Unknown keys are errors (BAD_INPUT naming them): typos must not pass silently. The one exception is a
generate request in worker-comfyui compatibility mode (workflows.compat), which the official worker would
run whatever else it carries: there unknown keys are ignored, each named in the request's `warnings`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, TypedDict

from workflows.compat import COMFY_ORG_KEY_NAMES, RESPONSE_FORMATS, WORKER_COMFYUI, unsupported_key_hint
from workflows.errors import JobError
from workflows.parameters import IMAGE_ROLES, PATCHABLE, ParameterError, check_parameters
from workflows.registry import Entry

_COMMON = {"mode"}
_TEST_KEYS = _COMMON | {"test"}
_DIAGNOSE_KEYS = _COMMON | {"diagnose", "workflow", "checksums"}
_GENERATE_KEYS = _COMMON | {
    "workflow",
    "images",
    *IMAGE_ROLES,
    "overrides",
    "timeout_s",
    "response_format",
    *COMFY_ORG_KEY_NAMES,
    *PATCHABLE,
}
MODES = ("test", "diagnose", "generate")
# Levels of nesting a job's input may have; an editor save with nested subgraphs needs about 12. Deeper
# is refused before anything walks it: copy.deepcopy, the analysis and the redaction of secrets recurse,
# and Python's stack ends near 1,000 frames (a 900-deep list once answered INTERNAL_ERROR).
MAX_DEPTH = 64


class NamedImage(TypedDict):
    name: str  # the file name the workflow's loader refers to
    image: str  # base64 or a data URI


class JobInput(TypedDict, total=False):
    """A job's `input` as sent: every key any mode accepts (parse_request checks which mode takes
    which, and the values). The client's request builder writes this; tests/test_request_types.py
    keeps it equal to the keys accepted below."""

    mode: str  # test | diagnose | generate (default: generate, or test/diagnose when those are true)
    test: bool
    diagnose: bool
    checksums: bool  # diagnose: sha256 of every model file
    workflow: str | dict[str, Any]  # a registered name, or an API/editor-format workflow (generate)
    images: list[NamedImage]
    image_base64: str
    end_image_base64: str
    overrides: dict[str, dict[str, Any]]  # node id -> {input name: value}
    timeout_s: float
    response_format: str
    comfy_org_api_key: str  # a Comfy.org key for ComfyUI's API nodes (the official worker's name) ...
    api_key_comfy_org: str  # ... or one upstream version's name for it (workflows.compat.COMFY_ORG_KEY_NAMES)
    # workflows.parameters.PATCHABLE: a registered workflow maps them to node inputs
    seed: int
    steps: int
    cfg: float
    denoise: float
    frames: int
    fps: float
    width: int
    height: int
    prompt: str
    negative_prompt: str
    filename_prefix: str


@dataclass(frozen=True, slots=True)
class TestRequest:
    pass


@dataclass(frozen=True, slots=True)
class DiagnoseRequest:
    workflow: str | None = None
    checksums: bool = False


@dataclass(frozen=True, slots=True)
class ImageInput:
    name: str  # the name the workflow refers to (or 'image' / 'end_image' for the short forms)
    data: str  # base64 or data URI, decoded later
    role: str | None = None  # 'image' | 'end_image' for the short forms


@dataclass(frozen=True, slots=True)
class GenerateRequest:
    workflow: str | dict[str, Any] | None = None
    images: tuple[ImageInput, ...] = ()
    params: dict[str, Any] = field(default_factory=dict)
    overrides: dict[str, dict[str, Any]] = field(default_factory=dict)
    timeout_s: float | None = None
    response_format: str | None = None  # None: the deployment's RESPONSE_FORMAT
    comfy_org_api_key: str | None = field(default=None, repr=False)  # for ComfyUI's API nodes; a secret
    warnings: tuple[str, ...] = ()  # what was ignored (compatibility mode), said in the response

    def overridden(self) -> dict[str, frozenset[str]]:
        """node id -> the input names the job's `overrides` set (the policy judges those)."""
        return {str(k): frozenset(map(str, v)) for k, v in self.overrides.items()}


Request = TestRequest | DiagnoseRequest | GenerateRequest


_MAX_IGNORED_NAMED = 20  # compatibility mode: ignored keys named one by one in the answer, the rest counted


def _unknown_keys(data: dict[str, Any], allowed: set[str], mode: str, *, ignore: bool = False) -> tuple[str, ...]:
    """Refuse unknown keys (BAD_INPUT), or with `ignore` (compatibility mode) name each in a warning."""
    unknown = sorted(str(k) for k in data if k not in allowed)
    if not unknown:
        return ()
    hints = {k: hint for k in unknown if (hint := unsupported_key_hint(k))}
    if ignore:  # bounded like the refusal: a job can't grow its answer with key names
        named = tuple(
            f"input.{k[:80]} ignored: not a key of this worker" + (f" ({hints[k]})" if k in hints else "")
            for k in unknown[:_MAX_IGNORED_NAMED]
        )
        more = len(unknown) - _MAX_IGNORED_NAMED
        return named + ((f"{more} more unknown input keys ignored",) if more > 0 else ())
    message = f"unknown key(s) for mode {mode!r}: {', '.join(unknown)[:300]}"
    if hints:
        message += " (" + "; ".join(f"{k}: {v}" for k, v in hints.items()) + ")"
    raise JobError(
        "BAD_INPUT",
        message,
        {"unknown_keys": unknown[:50], "allowed_keys": sorted(allowed), **({"hints": hints} if hints else {})},
    )


def too_deep(value: Any, limit: int = MAX_DEPTH) -> str | None:
    """Where `value` nests more than `limit` lists/objects deep (e.g. `input.workflow.1.inputs.source`),
    else None. Iterative, so the check itself can't run out of stack."""
    stack: list[tuple[Any, int, str]] = [(value, 1, "input")]
    while stack:
        item, depth, where = stack.pop()
        children = item.items() if isinstance(item, dict) else enumerate(item) if isinstance(item, list) else ()
        for key, child in children:
            if isinstance(child, dict | list):
                if depth >= limit:
                    return f"{where}.{str(key)[:40]}"
                stack.append((child, depth + 1, f"{where}.{str(key)[:40]}" if len(where) < 300 else where))
    return None


def _mode(data: dict[str, Any]) -> str:
    mode = data.get("mode")
    if mode is None:
        if data.get("test") is True:
            return "test"
        if data.get("diagnose") is True:
            return "diagnose"
        return "generate"
    if mode not in MODES:
        raise JobError("BAD_INPUT", f"mode must be one of {', '.join(MODES)}, got {str(mode)[:80]!r}")
    return mode


def _bool(data: dict[str, Any], key: str, default: bool) -> bool:
    value = data.get(key, default)
    if not isinstance(value, bool):
        raise JobError("BAD_INPUT", f"{key} must be true or false")
    return value


def parse_request(job_input: Any, *, compat: bool = False) -> Request:
    """`compat`: the deployment answers in worker-comfyui's shape (RESPONSE_FORMAT); a request that asks for
    that shape itself is in compatibility mode too."""
    if compat and isinstance(job_input, str):  # the official worker also takes the input as a JSON string
        try:
            job_input = json.loads(job_input)
        except ValueError:
            raise JobError("BAD_INPUT", "input is a string that is not JSON") from None
    if not isinstance(job_input, dict):
        raise JobError("BAD_INPUT", f"input must be a JSON object, got {type(job_input).__name__}")
    if (where := too_deep(job_input)) is not None:
        raise JobError(
            "BAD_INPUT",
            f"input nests lists/objects more than {MAX_DEPTH} levels deep (at {where}); no workflow needs that "
            "much: send the value flatter",
        )
    mode = _mode(job_input)
    if mode == "test":
        _unknown_keys(job_input, _TEST_KEYS, mode)
        return TestRequest()
    if mode == "diagnose":
        _unknown_keys(job_input, _DIAGNOSE_KEYS, mode)
        workflow = job_input.get("workflow")
        if workflow is not None and not isinstance(workflow, str):
            raise JobError("BAD_INPUT", "workflow must be a registered workflow name for diagnose")
        return DiagnoseRequest(workflow, _bool(job_input, "checksums", False))
    compat = compat or job_input.get("response_format") == WORKER_COMFYUI
    ignored = _unknown_keys(job_input, _GENERATE_KEYS, mode, ignore=compat)
    return _parse_generate({k: v for k, v in job_input.items() if k in _GENERATE_KEYS}, ignored, compat)


def _comfy_org_key(data: dict[str, Any]) -> str | None:
    """The per-request Comfy.org key under either of the official worker's names (the first one set wins)."""
    for name in COMFY_ORG_KEY_NAMES:
        value = data.get(name)
        if value is not None and not isinstance(value, str):
            raise JobError("BAD_INPUT", f"{name} must be a string")
        if value:
            return value
    return None


def _parse_generate(data: dict[str, Any], warnings: tuple[str, ...] = (), compat: bool = False) -> GenerateRequest:
    workflow = data.get("workflow")
    if workflow is not None and not isinstance(workflow, str | dict):
        raise JobError("BAD_INPUT", "workflow must be a registered name or an API-format workflow object")
    images: list[ImageInput] = []
    raw_images = data.get("images", [])
    if not isinstance(raw_images, list):
        raise JobError("BAD_INPUT", 'images must be a list of {"name", "image"} objects')
    for i, item in enumerate(raw_images):
        if not (isinstance(item, dict) and isinstance(item.get("name"), str) and isinstance(item.get("image"), str)):
            raise JobError("BAD_INPUT", f'images[{i}] must be {{"name": str, "image": base64 str}}')
        if extra := sorted(set(item) - {"name", "image"}):  # the official worker reads only name and image
            if not compat:
                raise JobError("BAD_INPUT", f'images[{i}] must be {{"name": str, "image": base64 str}}')
            warnings += (f"input.images[{i}].{', '.join(extra)[:80]} ignored: an image is only name and image",)
        images.append(ImageInput(item["name"], item["image"]))
    for key, role in IMAGE_ROLES.items():
        if key in data:
            if not isinstance(data[key], str):
                raise JobError("BAD_INPUT", f"{key} must be a base64 string")
            images.append(ImageInput(role, data[key], role))
    try:
        params = check_parameters(data)
    except ParameterError as exc:
        raise JobError("BAD_INPUT", str(exc)) from None
    overrides = data.get("overrides", {})
    if not isinstance(overrides, dict) or not all(isinstance(v, dict) for v in overrides.values()):
        raise JobError("BAD_INPUT", "overrides must be {node_id: {input_name: value}}")
    timeout = data.get("timeout_s")
    if timeout is not None and (
        isinstance(timeout, bool) or not isinstance(timeout, int | float) or not 0 < timeout <= 86_400
    ):
        raise JobError("BAD_INPUT", "timeout_s must be a number of seconds between 0 and 86400")
    response_format = data.get("response_format")
    if response_format is not None and response_format not in RESPONSE_FORMATS:
        raise JobError("BAD_INPUT", f"response_format must be one of {', '.join(RESPONSE_FORMATS)}")
    return GenerateRequest(
        workflow,
        tuple(images),
        params,
        {str(k): v for k, v in overrides.items()},
        float(timeout) if timeout is not None else None,
        response_format,
        _comfy_org_key(data),
        warnings,
    )


def require_images(request: GenerateRequest, entry: Entry | None) -> None:
    """NO_IMAGE / NO_END_IMAGE when a registered workflow needs an image the request lacks."""
    roles = {i.role for i in request.images if i.role}
    if entry is not None:
        if "image" in entry.parameters and "image" not in roles:
            raise JobError("NO_IMAGE", f"workflow {entry.id!r} needs an input image (image_base64)")
        if "end_image" in entry.parameters and "end_image" not in roles:
            raise JobError("NO_END_IMAGE", f"workflow {entry.id!r} needs an end image (end_image_base64)")
