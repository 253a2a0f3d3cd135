"""Reading the worker's configuration never fails: a bad value falls back to its default, so the worker
always starts and answers every job (README, "Worker states")."""

from __future__ import annotations

import pytest

from handler.config import Settings

NUMERIC = (
    "COMFY_PORT",
    "COMFY_MAX_RESTARTS",
    "GENERATE_TIMEOUT_S",
    "COMFY_READY_TIMEOUT",
    "DISK_LOW_GB",
    "MAX_PAYLOAD_MB",
    "PROGRESS_INTERVAL_S",
    "MAX_SIDE",
    "MAX_FRAMES",
    "MAX_BATCH",
    "MAX_INPUT_PIXELS",
    "PRESIGN_EXPIRES_S",
    "COMFY_LOG_MAX_MB",
    "COMFY_RESTART_BACKOFF_S",
    "DISK_FULL_MB",
    "ENTRYPOINT_STARTED_AT",
)


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "-1", "abc", "", "1e999"])
def test_hostile_numbers_fall_back_to_the_defaults(value):
    defaults = Settings.from_env({})
    settings = Settings.from_env(dict.fromkeys(NUMERIC, value))
    assert settings.timeout_s == defaults.timeout_s and settings.comfy_port == defaults.comfy_port
    assert settings.comfy_url == "http://127.0.0.1:8188"  # the URL is built from the parsed port
    assert settings.policy.max_side == defaults.policy.max_side
    assert settings.max_payload_mb == defaults.max_payload_mb
    assert settings.comfy_max_restarts == defaults.comfy_max_restarts


def test_good_values_are_taken_and_unknown_response_format_is_native():
    settings = Settings.from_env({"COMFY_PORT": "9000", "GENERATE_TIMEOUT_S": "30", "RESPONSE_FORMAT": "v9"})
    assert settings.comfy_port == 9000 and settings.comfy_url == "http://127.0.0.1:9000"
    assert settings.timeout_s == 30 and settings.response_format == "native"
    assert Settings.from_env({"RESPONSE_FORMAT": "worker-comfyui"}).response_format == "worker-comfyui"
