"""Worker settings, read from the environment once. Nothing else in handler/ reads os.environ."""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypedDict

from workflows.compat import NATIVE, RESPONSE_FORMATS
from workflows.policy import JobPolicy
from workflows.secrets import secret_values
from workflows.vetting import parse_policy

HANDLER_VERSION = "0.1.0"


# A bad value in the environment falls back to the default: reading the configuration must never
# keep the worker from starting (and answering every job), and nan/inf/negative numbers would turn
# deadlines and limits into nonsense.
def _float(env: Mapping[str, str], key: str, default: float, minimum: float = 0.0) -> float:
    try:
        value = float(env.get(key, default))
    except ValueError:
        return default
    return value if math.isfinite(value) and value >= minimum else default


def _int(env: Mapping[str, str], key: str, default: int, minimum: int = 0) -> int:
    try:
        value = int(env.get(key, default))
    except ValueError:
        return default
    return value if value >= minimum else default


def _names(value: str | None) -> frozenset[str] | None:
    """A comma-separated list of node class names; None when unset or empty."""
    names = frozenset(n.strip() for n in (value or "").split(",") if n.strip())
    return names or None


@dataclass(frozen=True, slots=True)
class Settings:
    comfy_url: str = "http://127.0.0.1:8188"
    comfy_dir: Path = Path("/comfyui")  # ComfyUI root (models/, custom_nodes/)
    input_dir: Path = Path("/comfyui/input")
    output_dir: Path = Path("/comfyui/output")
    temp_dir: Path = Path("/comfyui/temp")
    comfy_log: Path = Path("/var/log/comfyui.log")
    comfy_pid_file: Path | None = None
    volume_dir: Path = Path("/runpod-volume")
    # RunPod's model cache (Hugging Face layout) and the worker-owned folder its models are linked into
    # (handler/model_cache.py); extra_model_paths.yaml lists that folder.
    model_cache_dir: Path = Path("/runpod-volume/huggingface-cache/hub")
    model_cache_links: Path = Path("/comfyui/models-cache")
    extra_model_paths: Path | None = None
    default_workflow: str = "smoke_image"
    timeout_s: float = 600.0
    ready_timeout_s: float = 120.0
    disk_low_gb: float = 2.0
    max_payload_mb: float = 10.0  # RunPod /run result limit; 20 for /runsync
    bucket_endpoint_url: str | None = None
    bucket_access_key_id: str | None = None
    bucket_secret_access_key: str | None = None
    # BUCKET_NAME; None (the default only with RESPONSE_FORMAT=worker-comfyui): the official worker's
    # (runpod SDK's) month bucket, see handler.outputs.sdk_bucket. Native mode keeps its own stable default.
    bucket_name: str | None = "comfyui-outputs"
    bucket_region: str | None = None  # None: from BUCKET_ENDPOINT_URL, as the runpod SDK reads it
    bucket_prefix: str = ""  # BUCKET_PREFIX: keys go under <prefix>/<job id>/ (the official worker's variable)
    self_check_strict: bool = False
    progress_interval_s: float = 0.5
    policy: JobPolicy = field(default_factory=JobPolicy)
    # How the worker runs ComfyUI (handler.supervisor).
    comfy_python: str = "python3"
    comfy_main: Path = Path("/comfyui/main.py")
    comfy_host: str = "127.0.0.1"
    comfy_port: int = 8188
    user_dir: Path = Path("/comfyui/user")
    comfy_extra_args: tuple[str, ...] = ()
    api_nodes: bool = False  # COMFY_API_NODES=1: ComfyUI's API nodes (paid Comfy.org) are not disabled
    comfy_log_max_mb: float = 20.0
    comfy_max_restarts: int = 3
    comfy_restart_backoff_s: float = 1.0
    disk_full_mb: float = 100.0
    self_check_at_start: bool = True
    entrypoint_started_at: float | None = None
    registry_dir: Path | None = None  # default: the registry shipped in workflows/registry
    response_format: str = NATIVE  # RESPONSE_FORMAT: the generate answer's shape unless a job asks otherwise
    max_input_pixels: int = 64 * 1024 * 1024  # every frame of every input image, summed
    presign_expires_s: int = 3600  # PRESIGN_EXPIRES_S; with RESPONSE_FORMAT=worker-comfyui the SDK's 604800 s
    comfy_org_api_key: str | None = field(default=None, repr=False)  # COMFY_ORG_API_KEY: ComfyUI's API nodes
    secret_values: tuple[str, ...] = ()  # every secret in the worker's environment (workflows.secrets)
    # How ComfyUI is confined (handler.confine, handler.memwatch; README "Security").
    comfy_run_as: str = "comfyui"  # COMFY_RUN_AS: the user ComfyUI runs as when the worker is root ("" = same)
    confine_fs: bool = True  # CONFINE_FS=0 turns Landlock off
    confine_read: tuple[str, ...] = ()  # CONFINE_READ: extra paths ComfyUI may read (":"-separated)
    confine_write: tuple[str, ...] = ()  # CONFINE_WRITE: extra paths ComfyUI may write
    # CONFINE_NET: TCP ports ComfyUI may connect to (); None: any. Unset: none, 443 with COMFY_API_NODES=1
    confine_net: tuple[int, ...] | None = ()
    max_file_mb: float = 4096.0  # MAX_FILE_MB: no file ComfyUI writes grows past it (RLIMIT_FSIZE); 0 = off
    memory_max_mb: float | None = None  # COMFY_MEMORY_MAX_MB: None = 90% of the machine's; 0 = off
    job_disk_mb: float = 2048.0  # JOB_DISK_MB: what one job may write under output + temp + user; 0 = off
    isolate_jobs: bool = False  # ISOLATE_JOBS=1: ComfyUI's caches are emptied before each job
    stop_grace_s: float = 30.0  # STOP_GRACE_S: how long a timed-out prompt may take to stop before a restart
    max_procs: int = 4096  # COMFY_MAX_PROCS: RLIMIT_NPROC of ComfyUI's user (processes + threads); 0 = off
    # UNVETTED_NODES: a job running node classes no one vetted (workflows.vetting): restart | deny | trust
    unvetted_nodes: str = "restart"
    trusted_nodes: frozenset[str] = frozenset()  # TRUSTED_NODES: classes vetted beside core + registered; "*"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        comfy_dir = Path(env.get("COMFY_DIR", "/comfyui"))
        pid_file = env.get("COMFY_PID_FILE")
        extra = env.get("COMFY_EXTRA_MODEL_PATHS")
        volume = env.get("RUNPOD_VOLUME_DIR", "/runpod-volume")
        # The endpoint's compatibility mode also brings the official worker's storage defaults (its bucket,
        # its 7-day URLs); a native endpoint keeps its own. A job's response_format changes only its shape.
        compat = _response_format(env.get("RESPONSE_FORMAT")) != NATIVE
        return cls(
            comfy_url=env.get("COMFY_URL", f"http://127.0.0.1:{_int(env, 'COMFY_PORT', 8188, minimum=1)}"),
            comfy_dir=comfy_dir,
            input_dir=Path(env.get("COMFY_INPUT_DIR", comfy_dir / "input")),
            output_dir=Path(env.get("COMFY_OUTPUT_DIR", comfy_dir / "output")),
            temp_dir=Path(env.get("COMFY_TEMP_DIR", comfy_dir / "temp")),
            comfy_log=Path(env.get("COMFY_LOG", "/var/log/comfyui.log")),
            comfy_pid_file=Path(pid_file) if pid_file else None,
            volume_dir=Path(volume),
            model_cache_dir=Path(env.get("MODEL_CACHE_DIR") or Path(volume) / "huggingface-cache/hub"),
            model_cache_links=Path(env.get("MODEL_CACHE_LINKS_DIR") or comfy_dir / "models-cache"),
            extra_model_paths=Path(extra) if extra else None,
            default_workflow=env.get("DEFAULT_WORKFLOW", "smoke_image"),
            timeout_s=_float(env, "GENERATE_TIMEOUT_S", 600.0, minimum=1.0),
            ready_timeout_s=_float(env, "COMFY_READY_TIMEOUT", 120.0),
            disk_low_gb=_float(env, "DISK_LOW_GB", 2.0),
            max_payload_mb=_float(env, "MAX_PAYLOAD_MB", 10.0),
            bucket_endpoint_url=env.get("BUCKET_ENDPOINT_URL") or None,
            bucket_access_key_id=env.get("BUCKET_ACCESS_KEY_ID") or None,
            bucket_secret_access_key=env.get("BUCKET_SECRET_ACCESS_KEY") or None,
            bucket_name=env.get("BUCKET_NAME") or (None if compat else "comfyui-outputs"),
            bucket_region=env.get("BUCKET_REGION") or None,
            bucket_prefix=env.get("BUCKET_PREFIX", "").strip("/"),
            self_check_strict=env.get("SELF_CHECK_STRICT", "0") == "1",
            progress_interval_s=_float(env, "PROGRESS_INTERVAL_S", 0.5),
            policy=JobPolicy(
                allow_inline=env.get("ALLOW_INLINE_WORKFLOWS", "1") != "0",
                allow_nodes=_names(env.get("ALLOW_NODES")),
                deny_nodes=_names(env.get("DENY_NODES")) or frozenset(),
                allow_unsafe=_names(env.get("ALLOW_UNSAFE_NODES")) or frozenset(),
                max_side=_int(env, "MAX_SIDE", 4096, minimum=16),
                max_frames=_int(env, "MAX_FRAMES", 1024, minimum=1),
                max_batch=_int(env, "MAX_BATCH", 64, minimum=1),
            ),
            **_supervision(env, comfy_dir),
            max_input_pixels=_int(env, "MAX_INPUT_PIXELS", 64 * 1024 * 1024, minimum=1),
            presign_expires_s=max(
                1, min(_int(env, "PRESIGN_EXPIRES_S", _SDK_PRESIGN_S if compat else 3600), _SDK_PRESIGN_S)
            ),
            comfy_org_api_key=env.get("COMFY_ORG_API_KEY") or None,
            secret_values=secret_values(env),
            **_confinement(env),
        )

    def secrets(self) -> list[str]:
        """Values that must never appear in a response or a log line: every secret of the environment
        (RUNPOD_API_KEY, any *_KEY / *_TOKEN / *_SECRET / *_PASSWORD, SECRET_ENV_VARS), the bucket keys."""
        extra = [s for s in (self.bucket_access_key_id, self.bucket_secret_access_key, self.comfy_org_api_key) if s]
        return sorted({*self.secret_values, *extra}, key=len, reverse=True)


_SDK_PRESIGN_S = 7 * 24 * 3600  # the runpod SDK's rp_upload ExpiresIn, and SigV4's maximum


def _response_format(value: str | None) -> str:
    """RESPONSE_FORMAT; unset or unknown is native, like every other setting's invalid value: reading the
    configuration must never keep the worker from starting."""
    return value if value in RESPONSE_FORMATS else NATIVE


class _Supervision(TypedDict):
    """Settings' fields read by _supervision (typed, so `**_supervision(...)` is checked field by field)."""

    comfy_python: str
    comfy_main: Path
    comfy_host: str
    comfy_port: int
    user_dir: Path
    comfy_extra_args: tuple[str, ...]
    api_nodes: bool
    comfy_log_max_mb: float
    comfy_max_restarts: int
    comfy_restart_backoff_s: float
    disk_full_mb: float
    self_check_at_start: bool
    entrypoint_started_at: float | None
    registry_dir: Path | None
    response_format: str


def _supervision(env: Mapping[str, str], comfy_dir: Path) -> _Supervision:
    """The settings of how the worker starts, watches and restarts ComfyUI."""
    started = env.get("ENTRYPOINT_STARTED_AT")
    try:
        started_at = float(started) if started else None
    except ValueError:
        started_at = None
    return {
        "comfy_python": env.get("COMFY_PYTHON", "python3"),
        "comfy_main": Path(env.get("COMFY_MAIN", comfy_dir / "main.py")),
        "comfy_host": env.get("COMFY_HOST", "127.0.0.1"),
        "comfy_port": _int(env, "COMFY_PORT", 8188, minimum=1),
        "user_dir": Path(env.get("COMFY_USER_DIR", comfy_dir / "user")),
        "comfy_extra_args": tuple(env.get("COMFY_EXTRA_ARGS", "").split()),
        "api_nodes": env.get("COMFY_API_NODES", "0") == "1",
        "comfy_log_max_mb": _float(env, "COMFY_LOG_MAX_MB", 20.0),
        "comfy_max_restarts": _int(env, "COMFY_MAX_RESTARTS", 3),
        "comfy_restart_backoff_s": _float(env, "COMFY_RESTART_BACKOFF_S", 1.0),
        "disk_full_mb": _float(env, "DISK_FULL_MB", 100.0),
        "self_check_at_start": env.get("SELF_CHECK_AT_START", "1") != "0",
        "entrypoint_started_at": started_at,
        "registry_dir": Path(env["WORKFLOW_REGISTRY_DIR"]) if env.get("WORKFLOW_REGISTRY_DIR") else None,
        "response_format": _response_format(env.get("RESPONSE_FORMAT")),
    }


class _Confinement(TypedDict):
    comfy_run_as: str
    confine_fs: bool
    confine_read: tuple[str, ...]
    confine_write: tuple[str, ...]
    confine_net: tuple[int, ...] | None
    max_file_mb: float
    memory_max_mb: float | None
    job_disk_mb: float
    isolate_jobs: bool
    stop_grace_s: float
    max_procs: int
    unvetted_nodes: str
    trusted_nodes: frozenset[str]


def _paths(value: str | None) -> tuple[str, ...]:
    return tuple(p.strip() for p in (value or "").split(":") if p.strip())


def _ports(value: str) -> tuple[int, ...] | None:
    """CONFINE_NET: "*" = no network rules; else the TCP ports ComfyUI may connect to (bad entries skipped;
    empty: none, and then handler.seccomp closes UDP too)."""
    if value.strip() == "*":
        return None
    return tuple(int(p) for p in value.replace(" ", "").split(",") if p.isdigit() and 0 < int(p) < 65536)


def worker_environment() -> dict[str, str]:
    """The worker's own environment (handler.confine picks what ComfyUI may see of it)."""
    return dict(os.environ)


def _confinement(env: Mapping[str, str]) -> _Confinement:
    """The settings of ComfyUI's confinement (handler.confine)."""
    memory = env.get("COMFY_MEMORY_MAX_MB")
    return {
        "comfy_run_as": env.get("COMFY_RUN_AS", "comfyui").strip(),
        "confine_fs": env.get("CONFINE_FS", "1") != "0",
        "confine_read": _paths(env.get("CONFINE_READ")),
        "confine_write": _paths(env.get("CONFINE_WRITE")),
        # no egress unless asked (models come from the image and volume); API nodes call Comfy.org over HTTPS
        "confine_net": _ports(env.get("CONFINE_NET", "443" if env.get("COMFY_API_NODES", "0") == "1" else "")),
        "max_file_mb": _float(env, "MAX_FILE_MB", 4096.0),
        "memory_max_mb": _float(env, "COMFY_MEMORY_MAX_MB", 0.0) if memory else None,
        "job_disk_mb": _float(env, "JOB_DISK_MB", 2048.0),
        "isolate_jobs": env.get("ISOLATE_JOBS", "0") == "1",
        "stop_grace_s": _float(env, "STOP_GRACE_S", 30.0),
        "max_procs": _int(env, "COMFY_MAX_PROCS", 4096),
        "unvetted_nodes": parse_policy(env.get("UNVETTED_NODES")),
        "trusted_nodes": _names(env.get("TRUSTED_NODES")) or frozenset(),
    }
