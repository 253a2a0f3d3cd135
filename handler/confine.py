"""How ComfyUI is confined by the kernel, whatever node or pack a job runs (README "Security").

The job policy (workflows.policy, workflows.paths) refuses what it recognises; this layer holds when
a node nobody listed reads, writes or stays. Built once per spawn by the supervisor:

- a user: when the worker runs as root, ComfyUI runs as COMFY_RUN_AS (default `comfyui`, made by the
  Dockerfile). It can't read the worker's /proc/<pid>/environ, signal it, or write where that user
  has no rights.
- no capability, whatever its uid (handler.privileges.drop_all, which also makes the user switch), and
  a worker that is not dumpable: a ComfyUI left as root can't read its /proc/<pid>/environ either.
- Landlock (handler.landlock): ComfyUI may read and execute its install, its Python (every sys.path
  entry, asked of its interpreter), the model folders (extra_model_paths.yaml's base paths, the
  volume's models), the system's libraries, a short list of /etc files and of /sys (SYS_READ); it may
  write its output, temp and user directories and a private HOME/TMPDIR. Everything else fails with EACCES.
  Packs' folders in two phases (handler.landlock_phases): writable while ComfyUI imports them, not after.
- RLIMIT_FSIZE (MAX_FILE_MB): no file ComfyUI writes grows past it (Python ignores SIGXFSZ, so the
  write fails with EFBIG instead of killing the process).
- an environment by allow-list (`comfy_environment`): nothing the worker holds reaches ComfyUI unless
  ComfyUI, Python, CUDA or a cache needs it.
- RLIMIT_DATA (`data_limit`, decided by handler.memcap): the memory cap where no GPU is present; the
  supervisor adds ComfyUI to its cgroup (memcap) and samples its memory (memwatch).
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import pwd
import resource
import shutil
import signal
import subprocess
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from handler import comfy_boot, landlock, landlock_phases, privileges, seccomp
from handler.config import Settings
from workflows.secrets import credential_parts, is_secret_name, listed_names

_PR_SET_PDEATHSIG = 1

# Variables ComfyUI may see: by exact name, or by prefix. Anything else (DATABASE_URL, RUNPOD_*,
# BUCKET_*, a pack's credentials) stays with the worker; a secret-looking name, and a value that carries
# credentials by its shape (workflows.secrets.credential_parts: https://user:pw@host), is dropped even here.
# Names are the ones their tools document reading, where a public source lists them:
ENV_NAMES = frozenset(
    {
        "PATH",
        "LANG",
        "LANGUAGE",
        "TZ",
        "TERM",
        "LD_LIBRARY_PATH",
        "TRANSFORMERS_CACHE",
        "TRANSFORMERS_OFFLINE",
        "DIFFUSERS_CACHE",
        "XDG_CACHE_HOME",
        "MPLCONFIGDIR",
        "VHS_STRICT_PATHS",  # VideoHelperSuite's own path confinement (the Dockerfile sets it)
        # CPython's (`python --help-env`, docs.python.org/3/using/cmdline.html#environment-variables), not
        # PYTHONPATH (our packages must not shadow ComfyUI's) nor PYTHONSTARTUP (a file to run)
        *(
            f"PYTHON{n}"
            for n in [
                "BREAKPOINT",
                "CASEOK",
                "COERCECLOCALE",
                "DEBUG",
                "DEVMODE",
                "DONTWRITEBYTECODE",
                "FAULTHANDLER",
                "HASHSEED",
                "HOME",
                "INSPECT",
                "INTMAXSTRDIGITS",
                "IOENCODING",
                "MALLOC",
                "NODEBUGRANGES",
                "NOUSERSITE",
                "OPTIMIZE",
                "PLATLIBDIR",
                "PYCACHEPREFIX",
                "SAFEPATH",
                "UNBUFFERED",
                "UTF8",
                "VERBOSE",
                "WARNDEFAULTENCODING",
                "WARNINGS",
                "TRACEMALLOC",
                "PROFILEIMPORTTIME",
                "ASYNCIODEBUG",
                "MALLOCSTATS",
                "USERBASE",
                "EXECUTABLE",
            ]
        ),
        # huggingface_hub's (huggingface.co/docs/huggingface_hub/package_reference/environment_variables,
        # and its constants.py): caches, offline and timeouts. Not HF_TOKEN nor HF_TOKEN_PATH (the token's
        # file), nor its OAuth client; HF_ENDPOINT only without credentials in it (dropped above).
        *(
            f"HF_{n}"
            for n in [
                "ENDPOINT",
                "INFERENCE_ENDPOINT",
                "HOME",
                "HUB_CACHE",
                "ASSETS_CACHE",
                "XET_CACHE",
                "HUB_OFFLINE",
                "DEBUG",
                "HUB_VERBOSITY",
                "HUB_ETAG_TIMEOUT",
                "HUB_DOWNLOAD_TIMEOUT",
                "HUB_DISABLE_PROGRESS_BARS",
                "HUB_DISABLE_SYMLINKS",
                "HUB_DISABLE_SYMLINKS_WARNING",
                "HUB_DISABLE_EXPERIMENTAL_WARNING",
                "HUB_DISABLE_TELEMETRY",
                "HUB_DISABLE_IMPLICIT_TOKEN",
                "HUB_DISABLE_UPDATE_CHECK",
                "HUB_DISABLE_XET",
                "HUB_DISABLE_SHARED_BLOBS",
                "HUB_ENABLE_HF_TRANSFER",
                "XET_HIGH_PERFORMANCE",
                "DATASETS_OFFLINE",
            ]
        ),
        "HUGGINGFACE_HUB_CACHE",
        "HUGGINGFACE_ASSETS_CACHE",
        "DO_NOT_TRACK",  # ComfyUI sets it itself (main.py)
    }
)
# Prefixes kept only for families whose every documented variable is a device, thread, cache, allocator
# or log setting: none holds a credential by construction, and a name a deployment might add under one
# that looks secret (TORCH_HUB_TOKEN) is dropped by its name, a URL with a password by its shape.
ENV_PREFIXES = (
    "LC_",  # POSIX locale categories: a locale name each
    "CUDA_",  # CUDA's runtime (docs.nvidia.com/cuda/cuda-c-programming-guide, "CUDA Environment Variables")
    "CUDNN_",  # cuDNN's logging and tuning
    "NVIDIA_",  # the NVIDIA container toolkit's device and capability selectors
    "NCCL_",  # NCCL's network and tuning knobs (docs.nvidia.com/deeplearning/nccl, "Environment Variables")
    "TORCH_",  # PyTorch's (docs.pytorch.org "Torch Environment Variables": threading, CUDA, MPS, debug, misc)
    "PYTORCH_",  # PyTorch's allocator and device checks (PYTORCH_CUDA_ALLOC_CONF, ...)
    "TORCHINDUCTOR_",  # torch.compile's cache directory and tuning
    "OMP_",  # OpenMP's thread settings
    "MKL_",  # Intel MKL's
    "OPENBLAS_",  # OpenBLAS's
    "KMP_",  # Intel OpenMP's
)
# Extra names the deployment passes through (COMFY_ENV_ALLOW, comma-separated).
ENV_ALLOW_VARIABLE = "COMFY_ENV_ALLOW"

# /etc entries a Python process and its libraries read, none holding a secret.
ETC_READ = (
    "ld.so.cache",
    "ld.so.conf",
    "ld.so.conf.d",
    "localtime",
    "timezone",
    "passwd",
    "group",
    "nsswitch.conf",
    "hosts",
    "host.conf",
    "resolv.conf",
    "gai.conf",
    "ssl",
    "ca-certificates",
    "pki",
    "mime.types",
    "fonts",
    "os-release",
    "debian_version",
    "machine-id",
    "matplotlibrc",
)
SYSTEM_READ = ("/usr", "/lib", "/lib32", "/lib64", "/bin", "/sbin", "/proc", "/opt/conda")
# /sys: what torch, CUDA's driver libraries and ComfyUI read — CPU and NUMA topology (/sys/devices/system:
# torch's cpuinfo, psutil), the GPU's PCI device and its driver module (/sys/bus/pci, /sys/devices/pci*,
# /sys/module/nvidia*: NVML, cuInit), the class and dev links into /sys/devices, cgroup limits, transparent
# huge pages (allocators). Not /sys/firmware (ACPI, DMI, EFI variables), the rest of /sys/kernel
# (security, debug, tracing) or /sys/fs (bpf, pstore), /sys/power, /sys/block.
SYS_READ = ("/sys/devices", "/sys/bus", "/sys/class", "/sys/dev", "/sys/module", "/sys/fs/cgroup", "/sys/kernel/mm")
DEVICES = ("/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom", "/dev/tty")


def comfy_environment(env: Mapping[str, str]) -> dict[str, str]:
    """ComfyUI's environment: only the names it, Python, CUDA or a model cache needs (ENV_NAMES,
    ENV_PREFIXES, COMFY_ENV_ALLOW), never PYTHONPATH (our packages must not shadow ComfyUI's own:
    comfy_api, app, utils), never a name that looks secret and never a value that carries credentials
    (a mirror's https://user:pw@host), whatever list it is on."""
    secret = listed_names(env)
    extra = {n.strip() for n in env.get(ENV_ALLOW_VARIABLE, "").split(",") if n.strip()}
    return {
        k: v
        for k, v in env.items()
        if (k in ENV_NAMES or k in extra or k.startswith(ENV_PREFIXES))
        and k != "PYTHONPATH"
        and not is_secret_name(k, secret)
        and "TOKEN" not in k.upper()
        and not credential_parts(v)
    }


@dataclass(frozen=True)
class Confinement:
    """What confines ComfyUI, and why not where something doesn't (diagnose's `confinement`)."""

    user: str | None = None  # the user ComfyUI runs as; None: the worker's own
    uid: int | None = None
    gid: int | None = None
    user_why_not: str | None = None
    landlock_abi: int = 0  # 0: not applied
    landlock_why_not: str | None = None
    read: tuple[str, ...] = ()
    write: tuple[str, ...] = ()
    net: dict[str, Any] | None = None  # {"active", "bind": port, "connect": [ports], "why_not"}
    seccomp: dict[str, Any] = field(default_factory=dict)  # handler.seccomp.for_spawn's report
    phases: landlock_phases.Plan = field(default_factory=lambda: landlock_phases.Plan(*["ComfyUI has not started"] * 2))
    max_file_mb: float = 0.0
    memory: dict[str, Any] = field(default_factory=dict)  # filled by the supervisor's watchdog

    def report(self, serve: dict[str, Any] | None = None) -> dict[str, Any]:
        """`serve`: what handler.comfy_boot said of the serve phase in this ComfyUI (ComfyLog.serve_phase)."""
        return {
            "user": {
                "active": self.user is not None,
                "name": self.user,
                "uid": self.uid,
                "why_not": None if self.user else self.user_why_not,
                "note": self.user_why_not if self.user else None,
            },
            "landlock": {
                "active": self.landlock_abi > 0,
                "abi": self.landlock_abi or None,
                "why_not": self.landlock_why_not,
                "read": list(self.read),
                "write": list(self.write),
                "net": self.net,
                "phases": self.phases.report(serve),
            },
            "seccomp": self.seccomp,
            "max_file_mb": self.max_file_mb or None,
            "memory": self.memory,
        }

    def summary(self) -> str:
        """One line for `test`: e.g. "user comfyui, landlock ABI 7, memory 12000 MB (rlimit)"."""
        parts = [f"user {self.user}" if self.user else "user: worker's own"]
        parts.append(f"landlock ABI {self.landlock_abi}" if self.landlock_abi else "landlock: off")
        mem, how = self.memory.get("max_mb"), self.memory.get("mechanism")
        parts.append((f"memory {mem:g} MB" + (f" ({how})" if how else "")) if mem else "memory: uncapped")
        return ", ".join(parts)


FALLBACK_USER = "nobody"


def resolve_user(settings: Settings) -> tuple[pwd.struct_passwd | None, str | None]:
    """(the user ComfyUI runs as, a note or None) or (None, why it runs as the worker's own user). A root
    worker whose COMFY_RUN_AS user is missing runs ComfyUI as `nobody` rather than as root: a root
    ComfyUI owns root's files wherever Landlock lets it reach (README "Where the kernel offers less")."""
    name = settings.comfy_run_as
    if not name or name == "root":
        return None, "disabled by COMFY_RUN_AS" if not name else "COMFY_RUN_AS=root"
    if os.geteuid() != 0:
        return None, f"the worker is not root (uid {os.geteuid()}): it can't start ComfyUI as another user"
    try:
        return pwd.getpwnam(name), None
    except KeyError:
        missing = f"user {name!r} does not exist in the image (the Dockerfile creates it)"
    # never root for want of a user: every Debian-based image has `nobody`, which owns nothing
    try:
        return pwd.getpwnam(FALLBACK_USER), f"{missing}: ComfyUI runs as {FALLBACK_USER} instead"
    except KeyError:
        return None, missing


# python_paths' answers for the worker's life, by (interpreter, its real path and mtime, user, environment).
_PYTHON_PATHS: dict[tuple[Any, ...], list[str]] = {}


def python_paths(python: str, env: Mapping[str, str], user: pwd.struct_passwd | None = None) -> list[str]:
    """Where ComfyUI's interpreter loads code from (prefixes, stdlib, site-packages, .pth entries):
    asked of the interpreter itself, so a venv, pyenv or conda layout needs no list. Asked with
    ComfyUI's own environment, user and lack of capabilities: a .pth file's code never runs with the
    worker's. Asked once per interpreter (~50 ms): a changed interpreter (its mtime) is asked again."""
    # a bare name (`python3`) is found on ComfyUI's PATH, as its spawn finds it
    real = os.path.realpath(shutil.which(python, path=env.get("PATH")) or python)
    try:
        mtime: int | None = os.stat(real).st_mtime_ns
    except OSError:
        mtime = None  # asked every time: nothing tells when it changes
    key = (python, real, mtime, user.pw_uid if user else None, tuple(sorted(env.items())))
    if mtime is not None and (cached := _PYTHON_PATHS.get(key)) is not None:
        return list(cached)
    code = "import sys, json; print(json.dumps([sys.prefix, sys.base_prefix, sys.exec_prefix, *sys.path]))"
    uid, gid, top = (user.pw_uid if user else None), (user.pw_gid if user else None), privileges.last_cap()
    try:
        out = subprocess.run(
            [python, "-I", "-c", code],
            capture_output=True,
            text=True,
            timeout=30,
            env=dict(env),
            check=True,
            preexec_fn=lambda: privileges.drop_all(uid, gid, top),
        ).stdout
        found = [p for p in json.loads(out) if p]
    except (OSError, subprocess.SubprocessError, ValueError):
        return []  # not cached: the next spawn asks again
    paths = sorted({*found, os.path.dirname(real), os.path.dirname(os.path.dirname(real))})
    if mtime is not None:
        _PYTHON_PATHS[key] = paths
    return list(paths)


def model_roots(settings: Settings) -> list[str]:
    """The model folders ComfyUI reads: RunPod's model cache, and from the extra model paths file (itself
    included) the top folder of each entry under its base path (the volume's `models/`,
    `ComfyUI/models/`). Never the rest of the volume: people keep tokens and tools' configs there
    (a `.env`, huggingface-cli's token, ComfyUI-Manager's config). A folder that doesn't exist when
    ComfyUI starts is readable after its next start."""
    roots = [str(settings.model_cache_dir)]
    path = settings.extra_model_paths
    if path is not None and path.is_file():
        roots.append(str(path))
        with contextlib.suppress(OSError, yaml.YAMLError):
            config = yaml.safe_load(path.read_text()) or {}
            for section in config.values() if isinstance(config, dict) else ():
                if not isinstance(section, dict):
                    continue
                base = str(section.get("base_path") or "")
                for key, value in section.items():
                    if key in ("base_path", "is_default") or not isinstance(value, str):
                        continue
                    for line in value.splitlines():
                        top = line.strip().strip("/").split("/")[0]
                        if top:
                            roots.append(os.path.join(base, top))
    return roots


def pack_dirs(settings: Settings) -> list[Path]:
    """Every installed pack's folder (custom_nodes/<pack>, in ComfyUI's tree and the extra model paths')."""
    roots = {settings.comfy_dir / "custom_nodes"}
    path = settings.extra_model_paths
    if path is not None and path.is_file():
        with contextlib.suppress(OSError, yaml.YAMLError):
            config = yaml.safe_load(path.read_text()) or {}
            for section in config.values() if isinstance(config, dict) else ():
                if isinstance(section, dict) and isinstance(section.get("custom_nodes"), str):
                    base = str(section.get("base_path") or "")
                    roots |= {Path(base, line.strip()) for line in section["custom_nodes"].splitlines() if line.strip()}
    packs = []
    for root in sorted(roots):
        with contextlib.suppress(OSError):
            packs += [p for p in sorted(root.iterdir()) if p.is_dir() and not p.name.startswith((".", "__"))]
    return packs


def scratch_dirs(settings: Settings) -> tuple[Path, Path]:
    """ComfyUI's private HOME and TMPDIR (inside its user directory, which it may write)."""
    return settings.user_dir / "home", settings.user_dir / "tmp"


def read_paths(settings: Settings, env: Mapping[str, str], user: pwd.struct_passwd | None = None) -> list[str]:
    """Everything ComfyUI may read (and execute); `env` is ComfyUI's own environment."""
    paths = [str(settings.comfy_dir), str(settings.comfy_main.parent), str(settings.input_dir)]
    paths.append(comfy_boot.FILE)  # the one file of the worker's ComfyUI runs (supervisor.comfy_command)
    paths += python_paths(settings.comfy_python, env, user)
    paths += model_roots(settings)
    # Hugging Face's model cache, not HF_HOME itself: its `token` file is the HF_TOKEN ComfyUI never sees
    paths += [v for k in ("HF_HUB_CACHE", "TORCH_HOME") if (v := env.get(k))]
    paths += [os.path.join(home, "hub") for home in [env.get("HF_HOME")] if home]
    paths += [f"/etc/{name}" for name in ETC_READ] + list(SYSTEM_READ) + list(SYS_READ)
    return paths + list(settings.confine_read)


def comfy_dirs(settings: Settings) -> list[Path]:
    """The directories the worker makes for ComfyUI to write: output, temp, user, its HOME and TMPDIR."""
    return [settings.output_dir, settings.temp_dir, settings.user_dir, *scratch_dirs(settings)]


def write_paths(settings: Settings) -> list[str]:
    """Everything ComfyUI may write (and create, rename, delete in)."""
    return [str(d) for d in comfy_dirs(settings)] + ["/dev/shm"] + list(settings.confine_write)


def device_paths() -> list[str]:
    """Devices ComfyUI may read, write and ioctl: the harmless ones and the GPU's (those present)."""
    gpus = []
    with contextlib.suppress(OSError):
        gpus = [f"/dev/{n}" for n in os.listdir("/dev") if n.startswith("nvidia")]
    return [*DEVICES, *sorted(gpus), "/dev/dri"]


@dataclass
class Launch:
    """One spawn's confinement: the arguments for subprocess.Popen, and the ruleset fd to close after."""

    confinement: Confinement
    env: dict[str, str]
    user: int | None
    group: int | None
    preexec_fn: Callable[[], None]
    ruleset_fd: int | None = None
    serve_fd: int | None = None  # the serve phase's ruleset, for comfy_boot (handler.landlock_phases)

    def popen_kwargs(self) -> dict[str, Any]:
        """The user switch is the preexec's (handler.privileges.drop_all): the bounding set and securebits
        can only be dropped while the child is still root."""
        kwargs: dict[str, Any] = {"env": self.env, "preexec_fn": self.preexec_fn}
        if self.serve_fd is not None:
            kwargs["pass_fds"] = (self.serve_fd,)
        return kwargs

    def argv(self, command: list[str]) -> list[str]:
        """ComfyUI's command, telling comfy_boot the serve ruleset's fd."""
        return landlock_phases.boot_argv(command, self.serve_fd)

    def close(self) -> None:
        landlock.close(self.ruleset_fd)
        landlock.close(self.serve_fd)
        self.ruleset_fd = self.serve_fd = None


def prepare(
    settings: Settings, worker_env: Mapping[str, str] | None = None, data_limit: int = 0, *, boot: bool = False
) -> Launch:
    """Everything one ComfyUI spawn needs to start confined. Makes (and hands to ComfyUI's user) the
    directories it may write; never raises for a missing feature: it is reported as `why_not`.
    One function because its steps are ordered: the directories exist and are ComfyUI's before its
    interpreter is asked for its paths (as ComfyUI's user), and the ruleset is built from those.
    `boot`: ComfyUI runs through handler.comfy_boot, which can apply the serve phase (landlock_phases)."""
    worker_env = os.environ if worker_env is None else worker_env
    env = {**comfy_environment(worker_env), "PYTHONUNBUFFERED": "1"}
    account, user_why_not = resolve_user(settings)
    home, tmp = scratch_dirs(settings)
    writable = comfy_dirs(settings)
    # input/3d: ComfyUI's Load3D makes it when /object_info is listed, and ComfyUI only reads input
    for d in [settings.input_dir, settings.input_dir / "3d", *writable]:
        with contextlib.suppress(OSError):
            d.mkdir(parents=True, exist_ok=True)
    packs = pack_dirs(settings) if account is not None else []
    if account is not None or os.geteuid() == 0:  # a root ComfyUI has no CAP_DAC_OVERRIDE: hand them to root
        owner = (account.pw_uid, account.pw_gid) if account is not None else (0, 0)
        for d in [*writable, *map(Path, settings.confine_write)]:  # not the input dir: ComfyUI only reads it
            _chown_tree(d, *owner)
    if account is not None:
        env.update(USER=account.pw_name, LOGNAME=account.pw_name)
    env.update(HOME=str(home), TMPDIR=str(tmp))

    abi, landlock_why_not = (0, "disabled by CONFINE_FS=0") if not settings.confine_fs else landlock.abi_version()
    ruleset_fd = serve_fd = None
    read, write = read_paths(settings, env, account), write_paths(settings)
    phases = landlock_phases.plan(abi, landlock_why_not, user=account is not None, boot=boot)
    if abi:
        rules = [(Path(p), landlock.READ) for p in read]
        rules += [(Path(p), landlock.WRITE) for p in write]
        devices = device_paths()
        rules += [(Path(p), landlock.DEVICE | landlock.READ_DIR) for p in devices]
        if any(p.startswith("/dev/nvidia") for p in devices):  # cuInit names its threads: /proc/<pid>/task/<tid>/comm
            rules.append((Path("/proc"), landlock.READ | landlock.WRITE_FILE))
            write = [*write, "/proc"]  # its files only (procfs makes none): what the report shows
        ports = None if settings.confine_net is None else (settings.comfy_port, settings.confine_net)
        try:  # the preexec's (start, or serve alone) and comfy_boot's (serve) when there are two phases
            ruleset_fd, serve_fd = landlock_phases.rulesets(abi, rules, packs, ports, phases.phased)
        except OSError as exc:  # a kernel or seccomp profile that refuses a rule: start unconfined, say why
            abi, landlock_why_not = 0, f"the kernel refused ComfyUI's Landlock ruleset: {exc}"
            phases = landlock_phases.plan(abi, landlock_why_not, user=False, boot=False)
    if account is not None:  # packs' folders open only where the serve phase closes them again
        landlock_phases.set_pack_dirs(packs, account.pw_gid, writable=phases.phased)
    # no egress (CONFINE_NET empty, the default): sockets other than TCP, AF_UNIX and route netlink closed too
    egress = "CONFINE_NET=*: no network rules" if settings.confine_net is None else None
    if settings.confine_net:
        egress = (
            f"CONFINE_NET allows TCP port(s) {_ports(settings.confine_net)}: UDP stays open, name resolution needs it"
        )
    socket_filter, socket_report = seccomp.for_spawn(egress is None, egress or "")
    max_file = _file_limit(settings.max_file_mb)
    # a fork bomb is bounded by the kernel; per uid, so only with ComfyUI's own user (handler.reaper)
    max_procs = _below_hard(resource.RLIMIT_NPROC, settings.max_procs) if account is not None else 0
    confinement = Confinement(
        user=account.pw_name if account else None,
        uid=account.pw_uid if account else None,
        gid=account.pw_gid if account else None,
        user_why_not=user_why_not,
        landlock_abi=abi,
        landlock_why_not=landlock_why_not,
        read=tuple(dict.fromkeys(read)) if abi else (),
        write=tuple(dict.fromkeys(write)) if abi else (),
        net=_net_report(settings, abi, landlock_why_not),
        seccomp=socket_report,
        phases=phases,
        max_file_mb=settings.max_file_mb,
    )
    fd = ruleset_fd
    uid, gid, top = (account.pw_uid if account else None), (account.pw_gid if account else None), privileges.last_cap()

    def preexec() -> None:  # pragma: no cover - runs in the child, before exec
        privileges.drop_all(uid, gid, top)  # the user switch, no capability left (README "Security")
        # the parent-death signal is reset by a change of user: set it after the switch
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
        if max_file > 0:
            resource.setrlimit(resource.RLIMIT_FSIZE, (max_file, max_file))
        if max_procs > 0:
            resource.setrlimit(resource.RLIMIT_NPROC, (max_procs, max_procs))
        if data_limit > 0:  # the memory cap (handler.memcap): an allocation over it fails in the node
            resource.setrlimit(resource.RLIMIT_DATA, (data_limit, data_limit))
        if fd is not None:
            landlock.restrict_self(fd)
        if socket_filter is not None:  # after no_new_privs (drop_all); the last step: it allows prctl
            socket_filter.install()

    return Launch(
        confinement,
        env,
        account.pw_uid if account else None,
        account.pw_gid if account else None,
        preexec,
        ruleset_fd,
        serve_fd,
    )


def _ports(ports: tuple[int, ...]) -> str:
    return ",".join(map(str, ports))


def _net_report(settings: Settings, abi: int, landlock_why_not: str | None) -> dict[str, Any]:
    """diagnose's `confinement.landlock.net`: the TCP ports ComfyUI may bind and connect to, or why no rule."""
    why = None
    if settings.confine_net is None:
        why = "CONFINE_NET=*: no network rules"
    elif not abi:
        why = f"Landlock is off: {landlock_why_not}"
    elif abi < 4:
        why = f"Landlock ABI {abi} has no network rules (ABI 4, Linux 6.7+): any TCP connection is allowed"
    if why is not None:
        return {"active": False, "bind": None, "connect": None, "why_not": why}
    return {"active": True, "bind": settings.comfy_port, "connect": list(settings.confine_net or ()), "why_not": None}


def _file_limit(max_file_mb: float) -> int:
    """RLIMIT_FSIZE for ComfyUI, in bytes (0: none): never above the worker's own hard limit, which
    ComfyUI's process could not raise (setrlimit would fail between fork and exec, and ComfyUI not start)."""
    limit = int(max_file_mb * 1024 * 1024)
    _soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    return min(limit, hard) if limit > 0 and hard != resource.RLIM_INFINITY else limit


def _below_hard(limit: int, value: int) -> int:
    """A limit ComfyUI's process may set: never above the worker's hard limit (setrlimit would fail)."""
    _soft, hard = resource.getrlimit(limit)
    return min(value, hard) if value > 0 and hard != resource.RLIM_INFINITY else value


def _chown_tree(root: Path, uid: int, gid: int) -> None:
    """Hand a directory ComfyUI writes to its user (what an earlier root run left there too)."""
    with contextlib.suppress(OSError):
        os.chown(root, uid, gid)
    for dirpath, dirnames, filenames in os.walk(root):
        for name in [*dirnames, *filenames]:
            with contextlib.suppress(OSError):
                os.chown(os.path.join(dirpath, name), uid, gid, follow_symlinks=False)
