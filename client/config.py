"""Client configuration: flags over environment, read once into a frozen object.

Nothing else in client/ reads os.environ. Three kinds of target:

    runpod   RUNPOD_ENDPOINT_ID (+ RUNPOD_API_KEY) or --endpoint-id: https://api.runpod.ai/v2/<id>
    url      --url: any RunPod-style base URL (the local stack's http://127.0.0.1:8000, a proxy)
    comfy    --comfy-url or RUNPOD_ENDPOINT_URL: a ComfyUI server directly, no RunPod in between

Flags win over the environment; with no flag, RUNPOD_ENDPOINT_ID wins over RUNPOD_ENDPOINT_URL.
Also read here: NO_COLOR (color_allowed) and the network volume's target and S3 keys (volume_target).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from client import redact
from client.errors import ConfigError, UsageError

CLOUD_API_BASE = "https://api.runpod.ai/v2"
_RUNPOD_STYLE = re.compile(r"^https?://[^/]*runpod\.(ai|io)(/.*)?/v2/[^/]+/?$")


# The pack cache (fetched packs, overlay venvs), under the home folder: the one default the CLI, the pack
# installer (client/local_comfy.py) and tools/packs.py share.
PACKS_CACHE = Path(".cache/comfy-runpod/packs")


def packs_cache(env: Mapping[str, str]) -> Path:
    """COMFY_PACKS_CACHE, else ~/.cache/comfy-runpod/packs (HOME read from `env` too)."""
    home = Path(env.get("HOME") or Path.home())
    return Path(env.get("COMFY_PACKS_CACHE") or home / PACKS_CACHE).expanduser()


@dataclass(frozen=True, slots=True)
class Target:
    kind: str  # "runpod" | "url" | "comfy"
    url: str  # base URL: .../v2/<endpoint id>, a RunPod-style base, or ComfyUI's root
    api_key: str | None = field(default=None, repr=False)
    endpoint_id: str | None = None

    @property
    def label(self) -> str:
        """How the target is shown to people (never with the key)."""
        names = {"runpod": "RunPod endpoint", "url": "RunPod-style API", "comfy": "ComfyUI (direct)"}
        return f"{names[self.kind]} {self.url}"


@dataclass(frozen=True, slots=True)
class Settings:
    target: Target | None
    timeout_s: float = 600.0  # overall deadline of one job, queue included
    poll_interval_s: float = 5.0  # the slowest status poll; polling starts faster and backs off to this
    retries: int = 3  # per HTTP call, for transient failures
    http_timeout_s: float = 30.0  # read timeout of one HTTP call
    connect_timeout_s: float = 10.0
    ledger_path: Path = Path.home() / ".cache/comfy-runpod/jobs.sqlite"
    history_path: Path = Path.home() / ".cache/comfy-runpod/history.sqlite"  # validate/bench runs (client.history)
    outputs_dir: Path = Path("outputs")
    ecosystem_dir: Path | None = None  # COMFY_RUNPOD_ECOSYSTEM: ComfyUI-Manager's lists, read instead of fetched
    hf_endpoint: str | None = None  # HF_ENDPOINT (huggingface_hub reads it too): a Hugging Face stand-in
    hf_token: str | None = field(default=None, repr=False)  # HF_TOKEN: gated model files' metadata
    packs_snapshots: Path | None = None  # COMFY_PACKS_SNAPSHOTS: NAME-COMMIT.tar.gz pack snapshots
    comfy_home: Path = Path.home() / ".cache/comfy-runpod/comfyui-0.3.75"  # COMFY_HOME: the local ComfyUI
    packs_cache: Path = Path.home() / PACKS_CACHE  # COMFY_PACKS_CACHE: fetched packs, overlay venvs

    def require_target(self) -> Target:
        if self.target is None:
            raise ConfigError("no endpoint configured")
        return self.target


def _number(env: Mapping[str, str], key: str, default: float, *, minimum: float = 0.0) -> float:
    raw = env.get(key)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{key}={raw[:40]!r} is not a number", fix=f"Set {key} to a number or unset it.") from None
    if value < minimum:
        raise ConfigError(f"{key} must be at least {minimum:g}", fix=f"Set {key} to a number ≥ {minimum:g}.")
    return value


def _check_url(url: str, flag: str) -> str:
    if not re.match(r"^https?://[^\s/]+", url):
        raise UsageError(f"{flag} must be an http(s) URL, got {url[:80]!r}")
    return url.rstrip("/")


def _target(
    env: Mapping[str, str], url: str | None, comfy_url: str | None, endpoint_id: str | None, api_key: str | None
) -> Target | None:
    given = [
        name for name, value in (("--url", url), ("--comfy-url", comfy_url), ("--endpoint-id", endpoint_id)) if value
    ]
    if len(given) > 1:
        raise UsageError(f"give only one target, not {' and '.join(given)}")
    key = api_key or env.get("RUNPOD_API_KEY") or None
    redact.register(key)
    if url:
        return Target("url", _check_url(url, "--url"), key)
    if comfy_url:
        return Target("comfy", _check_url(comfy_url, "--comfy-url"))
    endpoint = endpoint_id or env.get("RUNPOD_ENDPOINT_ID") or None
    if endpoint:
        if not re.fullmatch(r"[A-Za-z0-9_-]{1,128}", endpoint):
            raise ConfigError(f"endpoint id {endpoint[:40]!r} has unexpected characters")
        if not key:
            raise ConfigError(
                "RUNPOD_ENDPOINT_ID is set but RUNPOD_API_KEY is not",
                fix="Export RUNPOD_API_KEY (RunPod console > Settings > API Keys).",
            )
        base = _check_url(env.get("RUNPOD_API_BASE") or CLOUD_API_BASE, "RUNPOD_API_BASE")
        return Target("runpod", f"{base}/{endpoint}", key, endpoint)
    direct = env.get("RUNPOD_ENDPOINT_URL") or None
    if direct:
        direct = _check_url(direct, "RUNPOD_ENDPOINT_URL")
        if _RUNPOD_STYLE.match(direct):  # somebody put RunPod's own endpoint URL here: treat it as one
            return Target("url", direct, key)
        return Target("comfy", direct)
    return None


def load_settings(
    *,
    url: str | None = None,
    comfy_url: str | None = None,
    endpoint_id: str | None = None,
    api_key: str | None = None,
    timeout_s: float | None = None,
    poll_interval_s: float | None = None,
    retries: int | None = None,
    env: Mapping[str, str] | None = None,
) -> Settings:
    """Settings from flags (the keyword arguments, None = not given) over the environment."""
    env = os.environ if env is None else env
    home = Path(env.get("HOME") or Path.home())
    ledger = env.get("COMFY_RUNPOD_LEDGER") or str(home / ".cache/comfy-runpod/jobs.sqlite")
    return Settings(
        target=_target(env, url, comfy_url, endpoint_id, api_key),
        timeout_s=timeout_s if timeout_s is not None else _number(env, "TEST_TIMEOUT", 600.0, minimum=0.1),
        poll_interval_s=(
            poll_interval_s if poll_interval_s is not None else _number(env, "TEST_POLL_INTERVAL", 5.0, minimum=0.05)
        ),
        retries=retries if retries is not None else int(_number(env, "TEST_RETRIES", 3)),
        http_timeout_s=_number(env, "TEST_HTTP_TIMEOUT", 30.0, minimum=0.1),
        ledger_path=Path(ledger).expanduser(),
        history_path=Path(env.get("COMFY_RUNPOD_HISTORY") or Path(ledger).expanduser().parent / "history.sqlite"),
        outputs_dir=Path(env.get("COMFY_RUNPOD_OUTPUTS") or "outputs"),
        ecosystem_dir=Path(env["COMFY_RUNPOD_ECOSYSTEM"]).expanduser() if env.get("COMFY_RUNPOD_ECOSYSTEM") else None,
        hf_endpoint=env.get("HF_ENDPOINT") or None,
        hf_token=env.get("HF_TOKEN") or None,
        packs_snapshots=Path(env["COMFY_PACKS_SNAPSHOTS"]) if env.get("COMFY_PACKS_SNAPSHOTS") else None,
        comfy_home=Path(env.get("COMFY_HOME") or home / ".cache/comfy-runpod/comfyui-0.3.75").expanduser(),
        packs_cache=packs_cache(env),
    )


def child_env(**overrides: str) -> dict[str, str]:
    """The environment for a child process (git): the user's own (proxies, git config), with overrides."""
    return {**os.environ, **overrides}


def color_allowed(env: Mapping[str, str] | None = None) -> bool:
    """False when NO_COLOR is set (https://no-color.org: any value, even empty, turns colour off)."""
    return "NO_COLOR" not in (os.environ if env is None else env)


# -- the network volume's S3 settings (`volume check | ls | push`) --------------------------------

ACCESS_KEY_ENV = ("RUNPOD_S3_ACCESS_KEY", "AWS_ACCESS_KEY_ID")
SECRET_KEY_ENV = ("RUNPOD_S3_SECRET_KEY", "AWS_SECRET_ACCESS_KEY")
VOLUME_ID_ENV = "RUNPOD_NETWORK_VOLUME_ID"
DATACENTER_ENV = "RUNPOD_DATACENTER_ID"


@dataclass(frozen=True, slots=True)
class VolumeTarget:
    volume_id: str
    datacenter: str
    endpoint_url: str
    access_key: str = field(repr=False)
    secret_key: str = field(repr=False)

    def describe(self) -> dict[str, str]:
        """How the target is shown (never with the keys)."""
        return {"id": self.volume_id, "datacenter": self.datacenter, "endpoint": self.endpoint_url}


def endpoint_for(datacenter: str) -> str:
    return f"https://s3api-{datacenter.lower()}.runpod.io/"


def volume_target(
    volume_id: str | None,
    datacenter: str | None,
    endpoint_url: str | None,
    env: Mapping[str, str] | None = None,
) -> VolumeTarget:
    """The network volume to talk to over S3: flags over environment; the keys only from the environment
    (a flag would land in shell history). Redacted from every output from here on."""
    env = os.environ if env is None else env
    volume_id = volume_id or env.get(VOLUME_ID_ENV) or ""
    datacenter = datacenter or env.get(DATACENTER_ENV) or ""
    if not re.fullmatch(r"[A-Za-z0-9_-]{1,128}", volume_id):
        raise UsageError(
            "--volume-id is required: the network volume's id (RunPod console > Storage)"
            if not volume_id
            else f"volume id {volume_id[:40]!r} has unexpected characters",
            code="VOLUME_ID_INVALID",
        )
    if not re.fullmatch(r"[A-Za-z]{2,4}(-[A-Za-z0-9]{1,8}){1,3}", datacenter):
        raise UsageError(
            "--datacenter is required: the volume's datacenter id, e.g. EU-RO-1"
            if not datacenter
            else f"datacenter {datacenter[:40]!r} is not a datacenter id like EU-RO-1",
            code="VOLUME_ID_INVALID",
        )
    if endpoint_url and not re.match(r"^https?://[^\s/]+", endpoint_url):
        raise UsageError(f"--endpoint-url must be an http(s) URL, got {endpoint_url[:80]!r}")
    access = next((env[k] for k in ACCESS_KEY_ENV if env.get(k)), "")
    secret = next((env[k] for k in SECRET_KEY_ENV if env.get(k)), "")
    redact.register(access)
    redact.register(secret)
    if not access or not secret:
        raise ConfigError(
            "no S3 API key for the network volume",
            code="VOLUME_NO_KEYS",
            fix=f"Export {ACCESS_KEY_ENV[0]} (user_…) and {SECRET_KEY_ENV[0]} (rps_…) from RunPod console > "
            "Settings > S3 API Keys (not the RunPod API key).",
        )
    return VolumeTarget(volume_id, datacenter.upper(), endpoint_url or endpoint_for(datacenter), access, secret)
