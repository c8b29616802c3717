"""Settings of the fake, and how they are read from the environment.

Every setting has an environment variable, so a server started by a process manager (or each
uvicorn worker process) is configured the same way as one started from the CLI.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Literal

from .controls.faults import FaultRule
from .controls.latency import Latency
from .errors import ConfigError
from .http.deviations import check_deviations

AuthMode = Literal["any", "off", "keys"]
ReplayMiss = Literal["synthesize", "error"]

ENV_PREFIX = "AIMLAPI_MOCK_"
MiB = 1024 * 1024


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
    image_cache_bytes: int = 32 * MiB
    """Rendered images kept, in bytes (some thousands of 1024x768 placeholders)."""
    url_secret: str = ""
    """Signs image URLs. Workers and restarts sharing it serve each other's URLs. Empty: this
    installation's own secret, made once in the user's cache directory (see :mod:`.secrets`)."""
    render_memory_bytes: int = 256 * MiB
    """Memory that image renders in progress may take together (estimated from their size)."""
    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = 1
    admin: bool = True
    """Serve the journal and fault controls under ``/__mock/``."""
    journal_size: int = 1000
    """Requests the journal keeps (the latest); 0 turns recording off."""
    journal_bytes: int = 32 * MiB
    """Bytes the journal keeps, bodies and headers counted; the oldest entries make room."""
    journal_body_bytes: int = 256 * 1024
    """Longer request bodies are kept truncated in the journal (flagged, with their size)."""
    redact_headers: tuple[str, ...] = ()
    """Headers the journal redacts beside the credential headers it always redacts."""
    admin_token: str | None = None
    """When set, admin routes need ``Authorization: Bearer <token>``."""
    max_header_bytes: int = 64 * 1024
    """Larger request heads (request line and headers) get 431 (on uvicorn with httptools)."""
    header_timeout: float = 10.0
    """Seconds a client may take to send a request's headers; the connection is then closed."""
    body_timeout: float = 30.0
    """Seconds a client may pause while sending a body; the connection is then closed."""
    faults: tuple[str, ...] = ()
    """Scripted fault rules such as ``"code=503, times=2"`` (see :mod:`mock_server.faults`)."""
    latency: str | None = None
    """Latency of successful generations, such as ``"uniform=0.2..1.5"``; None: none."""
    deviations: tuple[str, ...] = ()
    """Ways to drift from the spec on purpose (see :data:`mock_server.deviations.DEVIATIONS`)."""
    credits: int | None = None
    """Credits on the fake's account; each successful generation spends its cost, and with none
    left generations get the API's 403. None: unlimited."""
    fetch_input_images: bool = False
    """Download ``image_urls`` the fake did not issue (to check they are images); else noted."""
    cors_origins: tuple[str, ...] = ("*",)
    """Origins whose browser apps may call the API (``*``: any); the admin API stays same-origin."""
    replay: tuple[str, ...] = ()
    """Cassette directories whose recorded answers are replayed (see :mod:`mock_server.record`)."""
    replay_miss: ReplayMiss = "synthesize"
    """A request no cassette holds: ``synthesize`` it from the spec, or refuse it (``error``)."""
    replay_ignore: tuple[str, ...] = ()
    """Body fields (dotted: ``image_size.width``) left out when matching recorded requests."""

    def __post_init__(self) -> None:
        if self.auth not in ("any", "off", "keys"):
            raise ConfigError(f"auth mode {self.auth!r} is not one of 'any', 'off', 'keys'")
        if self.auth == "keys" and not self.api_keys:
            raise ConfigError("auth mode 'keys' needs at least one API key")
        for name in (
            "max_body_bytes",
            "image_cache_bytes",
            "journal_bytes",
            "journal_body_bytes",
            "render_memory_bytes",
        ):
            if getattr(self, name) < 0:
                raise ConfigError(f"{name} must not be negative, got {getattr(self, name)!r}")
        if not 0 <= self.port <= 65535:
            raise ConfigError(f"port {self.port!r} is outside 0..65535")
        if self.max_header_bytes < 1024:
            raise ConfigError(
                f"max_header_bytes must be at least 1024, got {self.max_header_bytes!r}"
            )
        for name in ("header_timeout", "body_timeout"):
            value = getattr(self, name)
            if not value > 0:
                raise ConfigError(f"{name} must be more than 0 seconds, got {value!r}")
        if self.admin_token is not None and not self.admin_token.strip():
            raise ConfigError("admin token must not be empty")
        if self.workers < 1:
            raise ConfigError(f"workers must be at least 1, got {self.workers!r}")
        if self.journal_size < 0:
            raise ConfigError(f"journal_size must not be negative, got {self.journal_size!r}")
        if self.credits is not None and self.credits < 0:
            raise ConfigError(f"credits must not be negative, got {self.credits!r}")
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
        if self.replay_miss not in ("synthesize", "error"):
            raise ConfigError(
                f"replay miss {self.replay_miss!r} is not one of 'synthesize', 'error'"
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
        for option in OPTIONS:
            raw = env.get(option.variable)
            if raw:
                try:
                    values.update(option.from_env(raw))
                except ConfigError as error:
                    raise ConfigError(f"{option.variable}: {error}") from None
        return cls(**values)  # type: ignore[arg-type]

    def to_env(self) -> dict[str, str]:
        """The environment variables that reproduce these settings (for worker processes)."""
        return {option.variable: option.to_env(self) for option in OPTIONS}

    def changed(self, options: Mapping[str, object]) -> Settings:
        """These settings changed by ``options`` given as Python values (the pytest marker's).

        Names are Settings fields; each value is coerced as its option says (one path or several,
        ``auth="any"`` or a list of keys, ...). Raises :class:`ConfigError` if unusable.
        """
        changes: dict[str, object] = {}
        for name, value in options.items():
            option = _BY_FIELD.get(name)
            if option is None or option.server_only:
                known = sorted(n for n, o in _BY_FIELD.items() if not o.server_only)
                raise ConfigError(f"unknown option {name!r}; expected one of {', '.join(known)}")
            changes.update(option.from_python(name, value))
        return replace(self, **changes)  # type: ignore[arg-type]


@dataclass(frozen=True)
class Option:
    """One setting, declared once: its CLI flag, environment variable, parser and help.

    The CLI, the environment and the pytest marker are all derived from :data:`OPTIONS`.
    ``parse`` turns one text value into the field's value; an option that takes several values
    (``many``) collects them into a tuple, from repeated flags or from the variable split at
    ``separator``.
    """

    field: str
    flag: str
    help: str
    parse: Callable[[str], object] = str
    many: bool = False
    separator: str = ","
    metavar: str | None = None
    server_only: bool = False
    """Where the server listens: not something a test's marker can change."""
    switch: str | None = None
    """For a flag that takes no value: the value it stands for (``--no-admin``: ``off``)."""

    @property
    def variable(self) -> str:
        """``AIMLAPI_MOCK_`` and the flag's name (plural for options that take several)."""
        name = self.flag.removeprefix("--").removeprefix("no-").replace("-", "_").upper()
        return ENV_PREFIX + name + ("S" if self.many and self.field.endswith("s") else "")

    def from_text(self, values: list[str]) -> dict[str, object]:
        """Fields from the text values of a flag (or of the variable, split)."""
        if self.field == "auth":
            return parse_auth(values)
        if self.many:
            return {self.field: tuple(self.parse(value) for value in values)}
        return {self.field: self.parse(values[-1])}

    def from_env(self, raw: str) -> dict[str, object]:
        if self.many or self.field == "auth":
            parts = [part.strip() for part in raw.split(self.separator)]
            return self.from_text([part for part in parts if part])
        return self.from_text([raw])

    def to_env(self, settings: Settings) -> str:
        if self.field == "auth":
            return ",".join(settings.api_keys) if settings.auth == "keys" else settings.auth
        value = getattr(settings, self.field)
        if self.many:
            return self.separator.join(str(item) for item in value)
        if isinstance(value, bool):
            return "on" if value else "off"
        return "" if value is None else str(value)

    def from_python(self, name: str, value: object) -> dict[str, object]:
        """Fields from a Python value (a marker's): text is parsed, the rest taken as it is."""
        if name == "api_keys":
            return {"auth": "keys", "api_keys": _strings(value)}
        if self.field == "auth":
            if isinstance(value, str) and value in ("any", "off", "keys"):
                return {"auth": value}
            return parse_auth(list(_strings(value)))
        if self.many:
            return {self.field: tuple(self.parse(item) for item in _strings(value))}
        if isinstance(value, str) and self.parse is not str:
            return {self.field: self.parse(value)}
        if value is not None and self.parse is str:
            return {self.field: str(value)}  # a text setting given as an object: a Latency, a Path
        return {self.field: value}


def _whole_number(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise ConfigError(f"{text!r} is not a whole number") from None


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ConfigError(f"{text!r} is not a number of seconds") from None
    if not math.isfinite(value):
        raise ConfigError(f"{text!r} is not a finite number of seconds")
    return value


def _switch(text: str) -> bool:
    value = text.strip().lower()
    if value in ("1", "on", "true", "yes"):
        return True
    if value in ("0", "off", "false", "no"):
        return False
    raise ConfigError(f"{text!r} is not on or off")


def _credits(text: str) -> int | None:
    if text.strip().lower() in ("unlimited", "none"):
        return None
    return _whole_number(text)


def _strings(value: object) -> tuple[str, ...]:
    """One value or several (paths, keys, rules) as a tuple of text."""
    if isinstance(value, str | os.PathLike) or not isinstance(value, Iterable):
        value = [value]
    return tuple(str(item) for item in value)


OPTIONS: tuple[Option, ...] = (
    Option("host", "--host", "interface to listen on (default 127.0.0.1)", server_only=True),
    Option(
        "port", "--port", "port, 0 for any free one (default 8000)", _whole_number,
        server_only=True,
    ),
    Option(
        "specs", "--spec", "OpenAPI 3.0 file or directory; repeat for more (default: the bundled "
        "FLUX.2 specs)", many=True, separator=os.pathsep, metavar="PATH",
    ),
    Option("workers", "--workers", "worker processes (default 1)", _whole_number, server_only=True),
    Option(
        "auth", "--auth", "'any' accepts any bearer token (default), 'off' needs none, otherwise "
        "the accepted API keys", many=True, metavar="MODE_OR_KEY",
    ),
    Option(
        "public_base_url", "--public-url", "base URL for image links (default: the request's own "
        "host)", metavar="URL",
    ),
    Option(
        "max_body_bytes", "--max-body-bytes", "larger request bodies get 413 (default 1048576)",
        _whole_number, metavar="N",
    ),
    Option(
        "image_cache_bytes", "--image-cache-bytes", "memory for rendered images, 0 to disable "
        "(default 32 MiB)", _whole_number, metavar="N",
    ),
    Option(
        "url_secret", "--url-secret", "key that signs image URLs; servers sharing it serve each "
        "other's URLs (default: this installation's own, kept in the user's cache directory)",
        metavar="TEXT",
    ),
    Option(
        "render_memory_bytes", "--render-memory-bytes", "memory image renders in progress may "
        "take together (default 256 MiB)", _whole_number, metavar="N",
    ),
    Option(
        "admin", "--no-admin", "do not serve the journal and fault controls under /__mock/",
        _switch, switch="off",
    ),
    Option(
        "journal_size", "--journal-size", "requests the journal keeps, 0 for none (default 1000)",
        _whole_number, metavar="N",
    ),
    Option(
        "journal_bytes", "--journal-bytes", "bytes the journal keeps, the oldest entries make "
        "room (default 32 MiB)", _whole_number, metavar="N",
    ),
    Option(
        "journal_body_bytes", "--journal-body-bytes", "longer request bodies are kept truncated "
        "in the journal (default 262144)", _whole_number, metavar="N",
    ),
    Option(
        "redact_headers", "--redact-header", "header the journal redacts, beside Authorization, "
        "Cookie, X-Api-Key and the like; repeat for more", many=True, metavar="NAME",
    ),
    Option(
        "admin_token", "--admin-token", "admin routes need 'Authorization: Bearer TOKEN' "
        "(default: none on loopback; generated and printed on other addresses)",
        metavar="TOKEN", server_only=True,
    ),
    Option(
        "max_header_bytes", "--max-header-bytes", "larger request heads get 431 (default 65536)",
        _whole_number, metavar="N", server_only=True,
    ),
    Option(
        "header_timeout", "--header-timeout", "seconds to send a request's headers before the "
        "connection is closed (default 10)", _seconds, metavar="S", server_only=True,
    ),
    Option(
        "body_timeout", "--body-timeout", "seconds a body may pause before the connection is "
        "closed (default 30)", _seconds, metavar="S", server_only=True,
    ),
    Option(
        "faults", "--fault", "scripted fault such as 'code=503, times=2'; repeat for more",
        many=True, separator=";", metavar="RULE",
    ),
    Option(
        "latency", "--latency", "latency of successful generations, such as "
        "'uniform=0.2..1.5, per=image' (default none)", metavar="SPEC",
    ),
    Option(
        "deviations", "--deviation", "drift from the spec on purpose, as the real API has; repeat "
        "for more", many=True, metavar="NAME",
    ),
    Option(
        "credits", "--credits", "credits on the account; generations spend them and get 403 "
        "when none are left (default unlimited)", _credits, metavar="N",
    ),
    Option(
        "fetch_input_images", "--fetch-input-images", "download image_urls the fake did not "
        "issue and check they are images (default: accept them unfetched)", _switch, switch="on",
    ),
    Option(
        "cors_origins", "--cors-origin", "origin whose browser apps may call the API; repeat for "
        "more (default '*': any)", many=True, metavar="ORIGIN",
    ),
    Option(
        "replay", "--replay", "answer requests a cassette recorded with 'aimlapi-mock record' "
        "from it; repeat for more", many=True, separator=os.pathsep, metavar="DIR",
    ),
    Option(
        "replay_miss", "--replay-miss", "a request no cassette holds: 'synthesize' it from the "
        "spec (default) or answer 'error' naming the closest recorded one", metavar="MODE",
    ),
    Option(
        "replay_ignore", "--replay-ignore", "body field left out when matching recorded requests, "
        "such as seed or image_size.width; repeat for more", many=True, metavar="FIELD",
    ),
)  # fmt: skip
"""Every setting of :class:`Settings`, in the order ``serve --help`` lists them."""

_BY_FIELD = {option.field: option for option in OPTIONS} | {"api_keys": OPTIONS[4]}


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
