"""The job parameters a registered workflow can expose, and their rules. The only list of their names.

`PATCHABLE` are values a job sends as top-level keys (`{"seed": 7}`); `IMAGE_ROLES` are the images it
sends as `image_base64` / `end_image_base64`. A registry entry maps any of `PARAMETERS` to node inputs.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

# parameter -> (accepted Python types, lower bound, upper bound, description for errors)
RULES: dict[str, tuple[tuple[type, ...], float | None, float | None, str]] = {
    "seed": ((int,), 0, 2**64 - 1, "a whole number from 0 to 2^64-1"),
    "steps": ((int,), 1, 10_000, "a whole number from 1 to 10000"),
    "cfg": ((int, float), 0, 100, "a number from 0 to 100"),
    "denoise": ((int, float), 0, 1, "a number from 0 to 1"),
    "frames": ((int,), 1, None, "a whole number ≥ 1"),
    "fps": ((int, float), 0.01, 240, "a number from 0.01 to 240"),
    "width": ((int,), 16, None, "a whole number ≥ 16"),
    "height": ((int,), 16, None, "a whole number ≥ 16"),
    "prompt": ((str,), None, None, "a string"),
    "negative_prompt": ((str,), None, None, "a string"),
    "filename_prefix": ((str,), None, None, "a string"),
}
PATCHABLE: tuple[str, ...] = tuple(RULES)
IMAGE_ROLES: dict[str, str] = {"image_base64": "image", "end_image_base64": "end_image"}  # request key -> role
PARAMETERS: tuple[str, ...] = (*PATCHABLE, *IMAGE_ROLES.values())
MAX_TEXT_CHARS = 100_000


class ParameterError(ValueError):
    """A parameter value breaks its rule; the message says which rule."""


def check_parameter(name: str, value: Any) -> Any:
    """Validate one patchable parameter's value and return it (ints stay ints for INT inputs)."""
    kinds, low, high, described = RULES[name]
    ok = isinstance(value, kinds) and not isinstance(value, bool)
    if ok and isinstance(value, float) and not math.isfinite(value):
        ok = False
    if ok and low is not None and value < low:
        ok = False
    if ok and high is not None and value > high:
        ok = False
    if ok and isinstance(value, str) and len(value) > MAX_TEXT_CHARS:
        ok = False
    if not ok:
        raise ParameterError(f"{name} must be {described}, got {value!r:.80}")
    return value


def check_parameters(data: Mapping[str, Any]) -> dict[str, Any]:
    """The patchable parameters present in a job input, each validated (ParameterError on the first bad one)."""
    return {name: check_parameter(name, data[name]) for name in PATCHABLE if name in data}
