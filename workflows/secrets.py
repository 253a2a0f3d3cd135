"""Which environment values are secrets, and how every outgoing byte is kept free of them. Pure.

One module for the worker (responses, its log, logs_tail) and the client (terminal, reports), so
both agree on what a secret is. A variable is a secret when its NAME marks one: a `_`-separated
part of it is KEY, TOKEN, SECRET, PASSWORD, ... (RUNPOD_API_KEY, HF_TOKEN, BUCKET_SECRET_ACCESS_KEY,
DB_PASSWORD), or it ends in one of them (APIKEY, GITHUBTOKEN); plus every name listed in
SECRET_ENV_VARS. A value is a secret by its SHAPE too, whatever its name: it carries credentials
(`credential_parts`: a URL's userinfo, `https://mirror:pw@host`; a secret-named parameter, `?token=`,
`password=`; an Authorization scheme, `Bearer ...`), and then the value, its userinfo and its password
alone are all masked. Values shorter than MIN_SECRET_CHARS are ignored: masking "1" or "true"
everywhere would destroy every response and protect nothing. Whatever the list, `redact` also masks
the password of any URL's userinfo in the text it is given.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import unquote

MASK = "***"
MIN_SECRET_CHARS = 6
SECRET_LIST_VARIABLE = "SECRET_ENV_VARS"  # comma-separated extra names, documented in README
# Name parts that mark a secret. PWD (the shell's working directory) is deliberately not one.
SECRET_WORDS = frozenset(
    {
        "KEY",
        "KEYS",
        "APIKEY",
        "TOKEN",
        "TOKENS",
        "SECRET",
        "SECRETS",
        "PASSWORD",
        "PASSWD",
        "PASS",
        "PASSPHRASE",
        "CREDENTIAL",
        "CREDENTIALS",
        "AUTH",
        "PRIVATE",
        "SIGNATURE",
        "COOKIE",
        "SESSION",
        "DSN",
    }
)
_SUFFIXES = ("KEY", "TOKEN", "SECRET", "PASSWORD", "PASSWD")
_PARTS = re.compile(r"[^A-Z0-9]+")
# scheme://userinfo@ : RFC 3986 userinfo holds no "/", "?", "#", "@" unescaped
_USERINFO = re.compile(r"\b[A-Za-z][A-Za-z0-9+.-]*://(?P<userinfo>[^/\s?#@]+)@")
# name=value after a start, "?", "&", ";", "," or a space: a query string, a DSN, a connection string
_PARAM = re.compile(r"(?:^|[?&;,\s])(?P<name>[A-Za-z][A-Za-z0-9_.-]*)=(?P<value>[^&;,\s]+)")
_AUTH_SCHEME = re.compile(r"(?i)\b(?:bearer|basic|digest)\s+(?P<cred>[A-Za-z0-9._~+/=-]+)")


def is_secret_name(name: str, extra: Iterable[str] = ()) -> bool:
    """True when a variable's name marks its value as a secret (or it is listed in `extra`)."""
    upper = name.upper()
    if upper in {e.strip().upper() for e in extra}:
        return True
    parts = [p for p in _PARTS.split(upper) if p]
    return any(p in SECRET_WORDS or p.endswith(_SUFFIXES) for p in parts)


def listed_names(env: Mapping[str, str]) -> frozenset[str]:
    """The names SECRET_ENV_VARS adds (comma-separated)."""
    return frozenset(n.strip() for n in env.get(SECRET_LIST_VARIABLE, "").split(",") if n.strip())


def secret_names(env: Mapping[str, str]) -> frozenset[str]:
    """Names of the environment's secret variables (SECRET_ENV_VARS itself holds names, not a secret)."""
    extra = listed_names(env)
    return frozenset(k for k in env if k != SECRET_LIST_VARIABLE and is_secret_name(k, extra))


def credential_parts(value: str) -> list[str]:
    """The credentials a value carries by its shape, whatever its variable is called: a URL's userinfo
    and its password (or the userinfo whole when it has no password: `https://<token>@host`), a
    secret-named parameter's value (`?access_token=`, `password=`, `X-Amz-Signature=`), an
    Authorization scheme's credential. Each also URL-decoded. Empty: the value carries none."""
    parts = []
    for match in _USERINFO.finditer(value):
        userinfo = match["userinfo"]
        parts += [userinfo, userinfo.partition(":")[2] or userinfo]
    parts += [m["value"] for m in _PARAM.finditer(value) if is_secret_name(m["name"])]
    parts += [m["cred"] for m in _AUTH_SCHEME.finditer(value)]
    return list(dict.fromkeys(p for part in parts for p in (part, unquote(part)) if p))


def secret_values(env: Mapping[str, str]) -> tuple[str, ...]:
    """Every secret value the environment holds, longest first (a secret containing another is masked
    whole): the values of secret names, and every value carrying credentials with its credential parts."""
    values = {env[k] for k in secret_names(env)}
    for value in env.values():
        if parts := credential_parts(value):
            values |= {value, *parts}
    return tuple(sorted((v for v in values if len(v) >= MIN_SECRET_CHARS), key=len, reverse=True))


def redact(text: str, secrets: Iterable[str]) -> str:
    """`text` with every secret masked, and the password of any URL's userinfo, wherever it came from."""
    for secret in secrets:
        if secret and secret in text:
            text = text.replace(secret, MASK)
    return _USERINFO.sub(_mask_userinfo, text) if "@" in text else text


def _mask_userinfo(match: re.Match[str]) -> str:
    user, colon, _password = match["userinfo"].partition(":")
    return match[0].replace(match["userinfo"], f"{user}:{MASK}" if colon else MASK, 1)


def redact_data(value: Any, secrets: tuple[str, ...] | list[str], skip_keys: frozenset[str] = frozenset()) -> Any:
    """A copy of a JSON-like value with every secret masked in its strings (keys included).

    `skip_keys`: dict keys whose string values are passed through untouched (base64 file content:
    scanning megabytes for text that can't be there costs time and finds nothing).
    Walked even with no secret listed: a URL's userinfo is masked by its shape (`redact`). Iterative: a
    response as deeply nested as ComfyUI may make it can't exhaust the stack while it is masked.
    """
    root: list[Any] = [None]
    stack: list[tuple[Any, Any, Any]] = [(root, 0, value)]  # (the copy's container, key in it, original)
    while stack:
        into, at, item = stack.pop()
        if isinstance(item, str):
            into[at] = redact(item, secrets)
        elif isinstance(item, dict):
            copied: dict[Any, Any] = {}
            for k, v in item.items():
                key = redact(k, secrets) if isinstance(k, str) else k
                copied[key] = v
                if not (k in skip_keys and isinstance(v, str)):
                    stack.append((copied, key, v))
            into[at] = copied
        elif isinstance(item, list | tuple):
            into[at] = items = list(item)
            stack.extend((items, i, v) for i, v in enumerate(item))
        else:
            into[at] = item
    return root[0]
