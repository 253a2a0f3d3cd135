"""Findings: what the analysis reports, in a shape a person can act on.

Every finding carries a stable `code`, a `severity`, a human `message` and a `fix`. The codes are
part of the public contract (README, "Finding codes"); never rename one.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import Any


class Severity(StrEnum):
    ERROR = "error"
    WARNING = "warning"
    INFO = "info"


@dataclass(frozen=True, slots=True)
class Finding:
    code: str
    severity: Severity
    message: str
    fix: str
    node_id: str | None = None
    input: str | None = None
    path: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON shape: optional keys are left out rather than sent as null."""
        return {k: (str(v) if k == "severity" else v) for k, v in asdict(self).items() if v is not None}


def error(code: str, message: str, fix: str, **where: str | None) -> Finding:
    return Finding(code, Severity.ERROR, message, fix, **where)


def warning(code: str, message: str, fix: str, **where: str | None) -> Finding:
    return Finding(code, Severity.WARNING, message, fix, **where)


def has_errors(findings: list[Finding]) -> bool:
    return any(f.severity is Severity.ERROR for f in findings)


@dataclass(frozen=True, slots=True)
class FindingCode:
    """One row of the finding catalogue: the README's finding table is generated from these
    (`python -m tools.doc_tables`; tests/test_docs.py keeps them equal)."""

    code: str
    severity: str  # the severity it is reported with ("error / warning" where the situation decides)
    meaning: str
    fix: str


def _codes(*rows: tuple[str, str, str, str]) -> dict[str, FindingCode]:
    return {row[0]: FindingCode(*row) for row in rows}


# Every finding code the analysis, diagnose, the self-check and the client report. Grouped as a person
# meets them: the workflow's nodes and values, its models, editor conversion, the job policy, the
# deployment, ComfyUI's start, the model tree on disk, the registry.
FINDINGS: dict[str, FindingCode] = _codes(
    (
        "NODE_MISSING",
        "error",
        "A node class is not defined by ComfyUI or any loaded pack; the message names the pack "
        "(registry pin, else a map of popular packs) and the installed commit when it registers other names.",
        "Install the pack the message names (at the commit it names) or remove the node.",
    ),
    (
        "PACK_IMPORT_FAILED",
        "error",
        "A custom node pack raised on import (from ComfyUI's start-up log), with its error.",
        "Fix the pack's import error (usually a missing requirement; see logs_tail), then restart the worker.",
    ),
    (
        "PACK_VERSION_DIFFERS",
        "warning",
        "`workflow add`: a pack is pinned to another version than the one the editor save records (the "
        "registry's pin, or the nearest obtainable when the recorded one can't be had).",
        "Pin the version the save records if it can be obtained (a snapshot or git), or re-save the workflow "
        "with the pinned version; nodes whose saved values don't fit its layout are refused, not guessed.",
    ),
    (
        "PACK_REQUIREMENTS_FAILED",
        "error / warning",
        "A pack's requirements.txt (or install.py) could not be installed under the venv's constraints; the "
        "message names the requirement and what it conflicts with (docker/pack_requirements.sh). The image "
        "build stops on it; `workflow add` warns and judges the pack by the nodes it still registers.",
        "Install the requirement by hand, or pin a pack commit whose requirements fit ComfyUI's venv.",
    ),
    (
        "VALUE_NOT_IN_LIST",
        "error",
        "A combo input holds a value the node does not offer (per /object_info).",
        "Use one of the values ComfyUI lists for that input (the finding names the nearest).",
    ),
    (
        "VALUE_OUT_OF_RANGE",
        "error",
        "A number input is outside the node's min/max.",
        "Set the input within the range the finding names.",
    ),
    (
        "VALUE_WRONG_TYPE",
        "error",
        "An input holds a value of the wrong type (text for a number, ...).",
        "Send the type the finding names for that input.",
    ),
    (
        "INPUT_MISSING",
        "error",
        "A required input is neither set nor connected.",
        "Set or connect the required input the finding names.",
    ),
    (
        "INPUT_UNKNOWN",
        "warning",
        "An input the node does not declare (ComfyUI ignores it): often a renamed input.",
        "Remove it, or re-export the workflow from the installed version of the node.",
    ),
    (
        "LINK_BROKEN",
        "error",
        "A link to a missing node, a bad output index, or an output of the wrong type.",
        "Reconnect the input the finding names and export the workflow again.",
    ),
    (
        "WORKFLOW_UI_FORMAT",
        "error",
        "An editor-format workflow that cannot be converted exactly (see the UI_CONVERT_ findings with it).",
        "Export with Workflow > Export (API) in ComfyUI and send that.",
    ),
    (
        "WORKFLOW_INVALID",
        "error",
        "Not a workflow: no nodes, or a node without class_type / inputs.",
        "Send an API-format workflow: {node_id: {class_type, inputs}}.",
    ),
    (
        "NO_OUTPUT_NODE",
        "error",
        "Nothing in the workflow saves a file, so a job would return nothing.",
        "Add a SaveImage, SaveVideo or VHS_VideoCombine node.",
    ),
    (
        "MODEL_MISSING",
        "error",
        "A model file is not available to ComfyUI in the folder its loader reads.",
        "Put the file into the folder the finding names (the download URL is in the fix when the registry has it).",
    ),
    (
        "MODEL_IN_WRONG_FOLDER",
        "error",
        "The file exists, but in another folder or in a directory ComfyUI does not scan.",
        "Move it to the folder the finding names, or add its directory to extra_model_paths.yaml.",
    ),
    (
        "MODEL_NOT_SEEN",
        "warning",
        "A file on disk that ComfyUI does not list: a path outside extra_model_paths.yaml or a "
        "folder name ComfyUI does not use (Automatic1111's names, a singular lora/).",
        "Move it to the ComfyUI folder the fix names.",
    ),
    (
        "MODEL_SIZE_MISMATCH",
        "error",
        "A registered model's size differs from the registry's: truncated or another file.",
        "Download the file again from the registry's URL.",
    ),
    (
        "MODEL_HASH_MISMATCH",
        "error",
        "A registered model's sha256 differs (only with checksums: true).",
        "Download the file again from the registry's URL.",
    ),
    (
        "MODEL_LIST_FAILED",
        "error",
        "ComfyUI fails to list a model folder because a directory it scanned vanished (the volume was unmounted).",
        "Restore the volume (or the directory), then restart the worker.",
    ),
    (
        "UI_CONVERT_INVALID",
        "error",
        "The editor workflow is malformed (no nodes/links lists, bad ids).",
        "Save the workflow again from the ComfyUI editor, or export it in API format.",
    ),
    (
        "UI_CONVERT_UNKNOWN_NODE",
        "error",
        "An editor node's class is not in this ComfyUI's /object_info, so its widget "
        "values cannot be mapped to inputs.",
        "Install the pack that provides it on the worker, then convert again.",
    ),
    (
        "UI_CONVERT_WIDGET_MISMATCH",
        "error / warning",
        "Saved widget values do not fit the installed node's widgets by type or count (saved with another "
        "version of the node): refused, never shifted; too few values (defaults used) is a warning.",
        "Open and save the workflow with the installed node version, or export it in API format.",
    ),
    (
        "UI_CONVERT_LINK_BROKEN",
        "warning",
        "An editor link points at nothing (a Get node without its Set node, a deleted node).",
        "Reconnect the input in the editor and save again.",
    ),
    (
        "UI_CONVERT_INPUT_DROPPED",
        "warning",
        "An editor input could not be carried into the API workflow.",
        "Check the node in the editor; export in API format if the input matters.",
    ),
    (
        "UI_CONVERT_UNSUPPORTED",
        "error / warning",
        "An editor feature the converter does not support (the message names it).",
        "Export the workflow in API format from ComfyUI.",
    ),
    (
        "UI_CONVERT_DYNAMIC_PROMPT",
        "warning",
        "A text widget with {a|b} dynamic-prompt syntax: the editor expands it, the API does not.",
        "Expand the prompt yourself or accept the literal text.",
    ),
    (
        "POLICY_DENIED",
        "error",
        "This deployment's job policy refuses a node class (README, Security).",
        "Use another node, or widen the policy (ALLOW_UNSAFE_NODES, ALLOW_NODES, DENY_NODES; with "
        "UNVETTED_NODES=deny, register a workflow using the class or list it in TRUSTED_NODES).",
    ),
    (
        "PATH_REFUSED",
        "error",
        "A file input names a path outside ComfyUI's input/output/temp directories.",
        "Send the file with `images` and name it by its plain name.",
    ),
    (
        "LIMIT_EXCEEDED",
        "error",
        "A size, frame count, batch or subgraph nesting over this deployment's limit.",
        "Lower it under the limit the message names, or raise MAX_SIDE / MAX_FRAMES / MAX_BATCH / MAX_INPUT_PIXELS.",
    ),
    (
        "DISK_LOW",
        "error / warning",
        "Less than DISK_LOW_GB free on the container disk, output disk or volume.",
        "Free space (old outputs, unused models) or enlarge the container disk / network volume.",
    ),
    (
        "DISK_FULL",
        "error",
        "Less than DISK_FULL_MB free on the output disk: jobs are refused.",
        "Free space or enlarge the container disk / volume.",
    ),
    (
        "VOLUME_NOT_MOUNTED",
        "info",
        "No network volume at RUNPOD_VOLUME_DIR.",
        "Attach a network volume to the endpoint if your models live there.",
    ),
    (
        "CONFINEMENT_USER_OFF",
        "warning",
        "ComfyUI runs as root or as the worker's own user (COMFY_RUN_AS empty or root, the worker not root, "
        "or neither its user nor nobody in the image): it owns what that user owns (README Security).",
        "Run the worker as root and keep COMFY_RUN_AS (default comfyui), with that user in the image.",
    ),
    (
        "CONFINEMENT_LANDLOCK_OFF",
        "warning",
        "ComfyUI's files and network are not confined by Landlock; the message says why (CONFINE_FS=0, a "
        "kernel without it, a refused ruleset).",
        "Leave CONFINE_FS on, on a kernel with Landlock (5.13+, in its lsm= list) and a seccomp profile allowing it.",
    ),
    (
        "CONFINEMENT_MEMORY_UNCAPPED",
        "warning",
        "ComfyUI's memory is not capped (COMFY_MEMORY_MAX_MB=0): a job can grow until the OOM killer acts.",
        "Unset COMFY_MEMORY_MAX_MB (90% of the machine's memory) or set it to a number of MB.",
    ),
    (
        "COMFY_NOT_READY",
        "error",
        "ComfyUI does not answer.",
        "See logs_tail for a start-up error; the worker is recycled.",
    ),
    (
        "COMFY_STARTING",
        "error",
        "ComfyUI is still starting.",
        "Retry in a few seconds (phases shows where the start is).",
    ),
    (
        "COMFY_START_FAILED",
        "error",
        "ComfyUI ended at start with a Python error (the message has it).",
        "Fix what it names (a missing dependency, a bad COMFY_EXTRA_ARGS flag) and redeploy.",
    ),
    (
        "COMFY_START_TIMEOUT",
        "error",
        "ComfyUI did not answer within COMFY_READY_TIMEOUT.",
        "Find the slow step in phases and logs_tail (a pack, a slow volume), fix it or raise COMFY_READY_TIMEOUT.",
    ),
    (
        "COMFY_PORT_IN_USE",
        "error",
        "Another process holds ComfyUI's port.",
        "Stop it or set COMFY_PORT to a free port.",
    ),
    (
        "COMFY_CUDA_MISMATCH",
        "error",
        "The image's torch/CUDA build does not fit the host's GPU driver.",
        "Restrict the endpoint's CUDA versions to 12.8 and newer (README, Deploy); the worker is recycled.",
    ),
    (
        "COMFY_PACK_KILLED_START",
        "error",
        "A custom node pack ended ComfyUI's process while being imported.",
        "Remove or fix the pack the message names, then redeploy.",
    ),
    (
        "COMFY_MODEL_PATHS_INVALID",
        "error",
        "ComfyUI cannot read extra_model_paths.yaml (line and column in the message).",
        "Fix the YAML and redeploy.",
    ),
    (
        "COMFY_CRASH_LOOP",
        "error",
        "ComfyUI kept dying and the worker stopped restarting it.",
        "Read last_death and logs_tail (often out of memory at load: a bigger GPU); the worker is recycled.",
    ),
    (
        "COMFY_DIED",
        "warning",
        "ComfyUI died once and was restarted by the worker (restart_count, last_death).",
        "If it repeats, read last_death: often out of memory, so a lighter workflow or a bigger GPU.",
    ),
    (
        "HANDLER_IMPORT_FAILED",
        "error",
        "The worker's handler can't be imported (a dependency missing from its venv, a broken file): a "
        "last-resort handler answers every job with the import error and the traceback's last lines.",
        "Install the module the message names into HANDLER_PYTHON's venv, or fix the file and line it names; redeploy.",
    ),
    (
        "HANDLER_EXITED",
        "error",
        "The worker's process ended after its handler imported; a last-resort handler answers every job.",
        "Read the container log for its last lines, fix what they name and redeploy.",
    ),
    (
        "SELF_CHECK_FAILED",
        "error",
        "SELF_CHECK_STRICT=1 and the start-up self-check found errors.",
        "Fix the findings listed, or set SELF_CHECK_STRICT=0 to take jobs anyway.",
    ),
    (
        "SMOKE_FAILED",
        "error",
        "The self-check's smoke workflow failed; the message carries its error code.",
        "Fix what that code says (see logs_tail of the smoke run).",
    ),
    (
        "WORKFLOW_BROKEN",
        "error",
        "A registry file is broken (file, line, column): only its workflow is disabled.",
        "Fix the file and redeploy; other workflows keep working.",
    ),
    (
        "REGISTRY_INVALID",
        "error",
        "(static self-check at build) a registry entry cannot be loaded.",
        "Fix the entry the finding names (docs/workflows.md has the schema).",
    ),
    (
        "MODEL_PATHS_INVALID",
        "error",
        "extra_model_paths.yaml can't be read or names unknown folders.",
        "Fix the file (the message names the line or folder) and redeploy.",
    ),
    (
        "MODEL_FOLDER_DANGLING_LINK",
        "error",
        "A model folder is a symlink to nothing: ComfyUI silently skips it.",
        "Point the link at an existing directory or replace it with one.",
    ),
    (
        "MODEL_FOLDER_IS_FILE",
        "error",
        "A file sits where a model folder should be: ComfyUI silently skips it.",
        "Remove the file and create the folder.",
    ),
    (
        "MODEL_FOLDER_UNREADABLE",
        "error",
        "A model folder ComfyUI cannot read (permissions): silently skipped.",
        "Make it readable by the worker (chmod a+rX).",
    ),
    ("MODEL_FILE_DANGLING_LINK", "error", "A model entry is a symlink to nothing.", "Fix or remove the link."),
    (
        "MODEL_FILE_NOT_REGULAR",
        "warning",
        "A model entry is a fifo, socket or device, which no loader can read.",
        "Remove it and put the real file there.",
    ),
    (
        "MODEL_FILE_UNREADABLE",
        "error",
        "A model file ComfyUI lists but its user (COMFY_RUN_AS) can't open: a root-owned 0600 file or a "
        "closed folder on its path (ComfyUI's loader then says the file does not exist).",
        "chmod a+r the file (a+rx its folders) or chown it to ComfyUI's user.",
    ),
    ("MODEL_FILE_EMPTY", "error", "A model file of 0 bytes (an interrupted copy).", "Download the file again."),
    (
        "MODEL_FILE_CORRUPT",
        "error",
        "A .safetensors/.gguf/.ckpt/.pt/.pth whose header does not parse or declares more "
        "than the file holds (a truncated download, an HTML login page, a git-lfs pointer); only headers are read.",
        "Download the file again (with a token for gated files; `git lfs pull` for pointers).",
    ),
    (
        "MODEL_LAYOUT_NOT_SCANNED",
        "error",
        "A models/<folder> tree on the volume outside the scanned layouts (README, Volume layouts).",
        "Move the files to /runpod-volume/models/<folder> (or ComfyUI/models/<folder>).",
    ),
    (
        "CACHE_MODEL_INCOMPLETE",
        "error",
        "A registered model is in RunPod's model cache only as an unfinished download: its snapshot link "
        "points at a missing blob, or the repository holds only blobs/*.incomplete.",
        "Wait for RunPod to finish caching the repository and restart the worker, or set the endpoint's "
        "Model again so RunPod downloads it again.",
    ),
    (
        "CACHE_MODEL_NOT_IN_REPO",
        "warning",
        "A registered model's repository is in RunPod's model cache but not its file (another revision, another path).",
        "Check the registry URL's revision and path, or serve the model from the image or the volume.",
    ),
    (
        "CACHE_LINK_FAILED",
        "warning",
        "The worker could not read RunPod's model cache, or link a model found there into "
        "MODEL_CACHE_LINKS_DIR (read-only or full disk, a file in the way), so ComfyUI does not see it there.",
        "Make the cache readable and MODEL_CACHE_LINKS_DIR writable by the worker (or point it at a writable "
        "directory that extra_model_paths.yaml lists), and restart the worker.",
    ),
    (
        "VOLUME_VIEW_MISMATCH",
        "warning",
        "(client, diagnose --volume-report) The worker's view of the volume and its S3 listing disagree: the "
        "volume is mounted elsewhere or not at all.",
        "Attach the volume to the endpoint (same datacenter) and check RUNPOD_VOLUME_DIR (docs/volume.md).",
    ),
)


@dataclass(frozen=True, slots=True)
class FailureCode:
    """A code a failure signature (workflows/signatures.yaml) or a system probe answers with. One row
    serves both tables: the job error code (workflows.errors.CODES, with `fix` as the table's fix) and
    the finding code diagnose reports it with. The signature's own fix, naming the module, file or host,
    is more specific than `fix` and is the one a response carries."""

    code: str
    meaning: str
    fix: str
    refresh_worker: bool = False  # a fresh worker (another host) can help


FAILURE_CODES: tuple[FailureCode, ...] = (
    FailureCode(
        "GPU_OUT_OF_MEMORY",
        "The GPU ran out of memory (VRAM) during the job.",
        "Lower resolution, frames or batch, use a smaller/quantized model, or a GPU with more VRAM.",
    ),
    FailureCode(
        "RAM_OUT_OF_MEMORY",
        "The container ran out of system RAM (not VRAM) loading or moving a model.",
        "Use an endpoint with more RAM or smaller (fp8/GGUF) models.",
    ),
    FailureCode(
        "DEVICE_MISMATCH",
        "A node mixed tensors on the GPU and the CPU.",
        "Update the node's pack or set its device option to the model's device; restart ComfyUI.",
    ),
    FailureCode(
        "DTYPE_MISMATCH",
        "Tensors of two precisions (fp16/bf16/fp32) met in one operation.",
        "Set the node's precision option to match the model, or update its pack.",
    ),
    FailureCode(
        "MODEL_INCOMPATIBLE",
        "Models of different families were combined, or a file does not fit the loader that reads it.",
        "Use the text encoder, VAE, ControlNet, LoRA and loader made for the base model's family.",
    ),
    FailureCode(
        "SHAPE_MISMATCH",
        "Inputs a node combines have different sizes (images, latents, masks, conditioning).",
        "Give the node inputs of one size and one model family (scale images to the latent's size).",
    ),
    FailureCode(
        "MODEL_COMPONENT_MISSING",
        "The checkpoint has no text encoder or VAE, so the loader's output is None.",
        "Load the text encoder / VAE separately and wire it in, or use a full checkpoint.",
    ),
    FailureCode(
        "UPSTREAM_OUTPUT_EMPTY",
        "An input a node needs arrived empty (None): unconnected optional input or a loader that returned nothing.",
        "Connect the input the node needs and check the loader upstream loaded the right kind of file.",
    ),
    FailureCode(
        "MODEL_FILE_CORRUPT",
        "A model file does not parse (truncated, an HTML page or a git-lfs pointer saved as the model).",
        "Download the file again (with a token for gated files; `git lfs pull` for pointers).",
    ),
    FailureCode(
        "MODEL_FILE_UNREADABLE",
        "A model file ComfyUI lists can't be opened by ComfyUI's user (COMFY_RUN_AS): permissions, not a missing "
        "file (safetensors reports both as 'No such file or directory').",
        "chmod a+r the file (a+rx its folders) or chown it to ComfyUI's user; mode=diagnose names every such file.",
    ),
    FailureCode(
        "GGUF_UNSUPPORTED",
        "The installed GGUF loader does not know this GGUF file's architecture.",
        "Update ComfyUI-GGUF (and ComfyUI), or use a GGUF converted for it.",
    ),
    FailureCode(
        "ATTENTION_BACKEND_MISSING",
        "An optional GPU kernel library the node was set to use (sageattention, triton, flash-attn) is missing.",
        "Switch the node to sdpa/default attention, or install a build of the library for the image's torch.",
    ),
    FailureCode(
        "TORCH_BUILD_MISMATCH",
        "A compiled package (xformers, torchvision, an extension) was built for another torch/CUDA.",
        "Install the builds matching the image's torch from the same index, pinned together.",
    ),
    FailureCode(
        "NUMPY_ABI_MISMATCH",
        "A compiled module was built for NumPy 1.x and NumPy 2.x is installed (or the reverse).",
        "Pin numpy<2 in ComfyUI's venv or upgrade the module to a NumPy-2 build.",
    ),
    FailureCode(
        "COMFY_VERSION_SKEW",
        "A pack uses a ComfyUI module, function or name this ComfyUI version does not have.",
        "Pin the pack at a commit made for this ComfyUI version (or update ComfyUI), together.",
    ),
    FailureCode(
        "DEPENDENCY_VERSION_MISMATCH",
        "A Python dependency is at a version that removed (or lacks) what a pack uses.",
        "Install the versions the pack's requirements pin into ComfyUI's venv and pin them in the image.",
    ),
    FailureCode(
        "DEPENDENCY_MISSING",
        "A Python module a pack needs is not installed in ComfyUI's venv.",
        "Install the pack's requirements into ComfyUI's Python in the image and rebuild.",
    ),
    FailureCode(
        "SYSTEM_LIBRARY_MISSING",
        "A system library (libGL, libEGL, libgthread, ...) a package loads is not in the image.",
        "Install the Debian package that provides it in the image (libgl1, libglib2.0-0, libegl1) and rebuild.",
    ),
    FailureCode(
        "FFMPEG_MISSING",
        "A video node found no ffmpeg binary.",
        "Install ffmpeg in the image (or imageio-ffmpeg in ComfyUI's venv) and rebuild.",
    ),
    FailureCode(
        "DISK_READ_ONLY",
        "A write failed because the file system is read-only (ComfyUI's dir in a read-only image or volume).",
        "Point COMFY_OUTPUT_DIR / COMFY_TEMP_DIR / HF_HOME at a writable disk, or mount it read-write.",
    ),
    FailureCode(
        "DISK_INODES_FULL",
        "A disk has free bytes but no free inodes: no new file can be created on it.",
        "Delete many small files (old outputs, caches) or move outputs to a disk with free inodes.",
    ),
    FailureCode(
        "PERMISSION_DENIED",
        "The worker's user may not read or write a path a node or ComfyUI uses.",
        "Make the path readable/writable by the container's user, or move the write to a directory it owns.",
    ),
    FailureCode(
        "MODEL_DOWNLOAD_FAILED",
        "A node downloads a model at run time and the download failed (gated repo, no network, host down).",
        "Bake the model into the image or volume; for gated repos set HF_TOKEN with access to it.",
    ),
    FailureCode(
        "NETWORK_DENIED",
        "A node connected out (or looked up a host) during the job and was refused: ComfyUI may connect only where "
        "CONFINE_NET allows, by default nowhere.",
        "Put the model in the image or on the volume; to let nodes download over HTTPS set CONFINE_NET=443.",
    ),
    FailureCode(
        "GPU_FAULT",
        "A GPU kernel crashed (illegal memory access, cuDNN/cuBLAS failure): the CUDA context is unusable.",
        "Retry on a fresh worker (recycled); if it repeats, disable the custom kernel the traceback names.",
        True,
    ),
    FailureCode(
        "COMFY_LISTEN_ADDRESS_INVALID",
        "ComfyUI was told to listen on an address this container does not have.",
        "Set COMFY_HOST to 127.0.0.1 and remove --listen from COMFY_EXTRA_ARGS.",
    ),
    FailureCode(
        "CONFIG_MISMATCH",
        "What the worker's settings say and what the system reports disagree (both sides named).",
        "Make the setting match the system (or start the process with the setting), then redeploy.",
    ),
    FailureCode(
        "BUCKET_UNREACHABLE",
        "The output bucket the settings name does not answer (endpoint, name or keys).",
        "Check BUCKET_ENDPOINT_URL, BUCKET_NAME and the keys; until it answers, uploads fail (OUTPUT_UPLOAD_FAILED).",
    ),
)
FINDINGS.update(
    {c.code: FindingCode(c.code, "error", c.meaning, c.fix) for c in FAILURE_CODES if c.code not in FINDINGS}
)
