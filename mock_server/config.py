"""Settings of the fake, and how they are read from the environment.

Every setting has an environment variable, so a server started by a process manager (or each
uvicorn worker process) is configured the same way as one started from the CLI.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from typing import Literal

from .controls.faults import FaultRule
from .controls.latency import Latency
from .errors import ConfigError
from .http.deviations import check_deviations

AuthMode = Literal["any", "off", "keys"]

ENV_PREFIX = "AIMLAPI_MOCK_"
DEFAULT_URL_SECRET = "aimlapi-mock-default-url-secret"


@dataclass(frozen=True)
class Settings:
    """How one fake server behaves. ``Settings()`` is the documented default."""

    specs: tuple[str, ...] = ()
    """OpenAPI files or directories; empty means the bundled flux-2 and flux-2-max specs."""
    auth: AuthMode = "any"
    """``any``: any non-empty bearer token; ``keys``: one of ``api_keys``; ``off``: no check."""
    api_keys: tuple[str, ...] = ()
    public_base_url: str | None = None
    """Base of issued image URLs; default: the scheme and host the request came to."""
    max_body_bytes: int = 1024 * 1024
    image_cache_bytes: int = 48 * 1024 * 1024
    """Rendered images kept, in bytes (some thousands of 1024x768 placeholders)."""
    url_secret: str = DEFAULT_URL_SECRET
    """Signs image URLs. Workers and restarts sharing it serve each other's URLs."""
    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = 1
    admin: bool = True
    """Serve the journal and fault controls under ``/__mock/``."""
    journal_size: int = 1000
    """Requests the journal keeps (the latest); 0 turns recording off."""
    faults: tuple[str, ...] = ()
    """Scripted fault rules such as ``"code=503, times=2"`` (see :mod:`mock_server.faults`)."""
    latency: str | None = None
    """Latency of successful generations, such as ``"uniform=0.2..1.5"``; None: none."""
    deviations: tuple[str, ...] = ()
    """Ways to drift from the spec on purpose (see :data:`mock_server.deviations.DEVIATIONS`)."""

    def __post_init__(self) -> None:
        if self.auth not in ("any", "off", "keys"):
            raise ConfigError(f"auth mode {self.auth!r} is not one of 'any', 'off', 'keys'")
        if self.auth == "keys" and not self.api_keys:
            raise ConfigError("auth mode 'keys' needs at least one API key")
        for name in ("max_body_bytes", "image_cache_bytes", "port"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{name} must not be negative, got {getattr(self, name)!r}")
        if self.workers < 1:
            raise ConfigError(f"workers must be at least 1, got {self.workers!r}")
        if self.journal_size < 0:
            raise ConfigError(f"journal_size must not be negative, got {self.journal_size!r}")
        for rule in self.faults:
            FaultRule.parse(rule)
        if self.latency is not None:
            Latency.parse(self.latency)
        if self.public_base_url is not None and not self.public_base_url.startswith(
            ("http://", "https://")
        ):
            raise ConfigError(
                f"public base URL {self.public_base_url!r} must start with http:// or https://"
            )
        try:
            check_deviations(self.deviations)
        except ValueError as error:
            raise ConfigError(str(error)) from None

    def with_auth(self, words: list[str] | tuple[str, ...]) -> Settings:
        """Settings with the auth given as CLI words: ``any``, ``off`` or one or more keys."""
        return replace(self, **parse_auth(words))  # type: ignore[arg-type]

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Settings from ``AIMLAPI_MOCK_*`` variables; anything unset keeps its default."""
        env = os.environ if environ is None else environ
        values: dict[str, object] = {}

        def get(name: str) -> str | None:
            value = env.get(ENV_PREFIX + name)
            return value if value not in (None, "") else None

        if (specs := get("SPECS")) is not None:
            values["specs"] = tuple(part for part in specs.split(os.pathsep) if part)
        if (auth := get("AUTH")) is not None:
            values.update(parse_auth(auth.replace(",", " ").split()))
        if (url := get("PUBLIC_URL")) is not None:
            values["public_base_url"] = url
        if (secret := get("URL_SECRET")) is not None:
            values["url_secret"] = secret
        if (host := get("HOST")) is not None:
            values["host"] = host
        if (deviations := get("DEVIATIONS")) is not None:
            values["deviations"] = tuple(d for d in deviations.replace(",", " ").split() if d)
        for name in ("max_body_bytes", "image_cache_bytes", "port", "workers"):
            if (raw := get(name.upper())) is not None:
                values[name] = _integer(ENV_PREFIX + name.upper(), raw)
        if (admin := get("ADMIN")) is not None:
            values["admin"] = _switch(ENV_PREFIX + "ADMIN", admin)
        if (journal_size := get("JOURNAL_SIZE")) is not None:
            values["journal_size"] = _integer(ENV_PREFIX + "JOURNAL_SIZE", journal_size)
        if (faults := get("FAULTS")) is not None:
            values["faults"] = tuple(rule.strip() for rule in faults.split(";") if rule.strip())
        if (latency := get("LATENCY")) is not None:
            values["latency"] = latency
        return cls(**values)  # type: ignore[arg-type]

    def to_env(self) -> dict[str, str]:
        """The environment variables that reproduce these settings (for worker processes)."""
        env = {
            "SPECS": os.pathsep.join(self.specs),
            "AUTH": ",".join(self.api_keys) if self.auth == "keys" else self.auth,
            "PUBLIC_URL": self.public_base_url or "",
            "URL_SECRET": self.url_secret,
            "HOST": self.host,
            "ADMIN": "on" if self.admin else "off",
            "JOURNAL_SIZE": str(self.journal_size),
            "FAULTS": ";".join(self.faults),
            "LATENCY": self.latency or "",
            "DEVIATIONS": ",".join(self.deviations),
        }
        for spec_field in fields(self):
            if spec_field.name in ("max_body_bytes", "image_cache_bytes", "port", "workers"):
                env[spec_field.name.upper()] = str(getattr(self, spec_field.name))
        return {ENV_PREFIX + name: value for name, value in env.items()}


def parse_auth(words: list[str] | tuple[str, ...]) -> dict[str, object]:
    """``["any"]``, ``["off"]`` or a list of API keys, as Settings fields."""
    words = [word for word in words if word]
    if not words:
        raise ConfigError("auth needs 'any', 'off' or at least one API key")
    if len(words) == 1 and words[0].lower() in ("any", "off"):
        return {"auth": words[0].lower(), "api_keys": ()}
    if any(word.lower() in ("any", "off") for word in words):
        raise ConfigError(f"auth {words!r}: 'any' and 'off' cannot be combined with keys")
    return {"auth": "keys", "api_keys": tuple(words)}


def _integer(name: str, raw: str) -> int:
    try:
        return int(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not a whole number") from None


def _switch(name: str, raw: str) -> bool:
    value = raw.strip().lower()
    if value in ("1", "on", "true", "yes"):
        return True
    if value in ("0", "off", "false", "no"):
        return False
    raise ConfigError(f"{name}={raw!r} is not on or off")
