"""Faults the fake can inject: what they are, how they are written, when they fire.

One syntax serves the ``Prefer`` request header, the CLI, the environment, the admin routes and
the pytest marker: comma-separated tokens in the spirit of Prism's ``Prefer: code=429``::

    code=503, times=2                  scripted: the next two API requests get a 503
    code=429, retry-after=0, probability=0.3, seed=7
    code=500, model=blackforestlabs/flux-2-max
    close                              transport: connection closed without a response
    truncate                           transport: half the body, then the connection closes
    slow-body=2                        transport: the body trickles out over two seconds
    delay=0.5                          answer half a second later

Latency (:mod:`mock_server.latency`) is written the same way.
"""

from __future__ import annotations

import math
import random
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal, get_args

from ..errors import STATUS_MESSAGES, ConfigError
from .latency import Latency
from .syntax import integer, number, parse_tokens, show

__all__ = ["FORCEABLE_STATUSES", "Fault", "FaultPlan", "FaultRule"]

Transport = Literal["close", "truncate", "slow-body"]

FORCEABLE_STATUSES: tuple[int, ...] = tuple(sorted(s for s in STATUS_MESSAGES if s != 405))
"""Statuses a fault can force; each is answered with the real API's message and envelope."""
DEFAULT_RETRY_AFTER = 1
DEFAULT_SLOW_BODY_SECONDS = 1.0

_FAULT_TOKENS = ("code", "retry-after", "delay", "close", "truncate", "slow-body")
_RULE_TOKENS = ("times", "probability", "seed", "model")


@dataclass(frozen=True)
class Fault:
    """What to do to one response: force an error status, delay it, or break the transport.

    ``Fault(status=503)`` answers 503 with the API's message; ``retry_after`` sets the
    ``Retry-After`` header (a forced 429 sends 1 unless told otherwise); ``delay`` waits before
    answering; ``transport`` breaks the connection (``slow_body`` is how long a ``"slow-body"``
    takes to arrive).
    """

    status: int | None = None
    retry_after: int | None = None
    delay: float = 0.0
    transport: Transport | None = None
    slow_body: float = DEFAULT_SLOW_BODY_SECONDS

    def __post_init__(self) -> None:
        if self.status is not None and self.status not in FORCEABLE_STATUSES:
            raise ConfigError(
                f"code={self.status!r} is not a status the fake can force; expected one of "
                + ", ".join(map(str, FORCEABLE_STATUSES))
            )
        if self.retry_after is not None and self.retry_after < 0:
            raise ConfigError(f"retry-after={self.retry_after!r} must not be negative")
        if not math.isfinite(self.delay) or self.delay < 0:
            raise ConfigError(f"delay={self.delay!r} must be a number of seconds, 0 or more")
        if self.transport is not None and self.transport not in get_args(Transport):
            raise ConfigError(
                f"transport {self.transport!r} is not one of 'close', 'truncate', 'slow-body'"
            )
        if not math.isfinite(self.slow_body) or self.slow_body < 0:
            raise ConfigError(f"slow-body={self.slow_body!r} must be a number of seconds")
        if self.status is None and self.transport is None and self.delay == 0:
            raise ConfigError(
                "a fault needs code=STATUS, delay=SECONDS, close, truncate or slow-body"
            )

    @property
    def only_delays(self) -> bool:
        """True when the fault neither forces a status nor breaks the transport."""
        return self.status is None and self.transport is None

    @property
    def headers(self) -> dict[str, str]:
        """Extra headers of the forced error response."""
        retry_after = self.retry_after
        if retry_after is None and self.status == 429:
            retry_after = DEFAULT_RETRY_AFTER
        return {} if retry_after is None else {"Retry-After": str(retry_after)}

    def __str__(self) -> str:
        tokens: list[str] = []
        if self.status is not None:
            tokens.append(f"code={self.status}")
        if self.retry_after is not None:
            tokens.append(f"retry-after={self.retry_after}")
        if self.delay:
            tokens.append(f"delay={show(self.delay)}")
        if self.transport == "slow-body":
            tokens.append(f"slow-body={show(self.slow_body)}")
        elif self.transport is not None:
            tokens.append(self.transport)
        return ", ".join(tokens)

    @classmethod
    def parse(cls, text: str) -> Fault:
        """A fault written as tokens (``code=429, retry-after=0``); raises :class:`ConfigError`."""
        tokens = parse_tokens(text)
        scripted = [name for name in tokens if name in _RULE_TOKENS]
        if scripted:
            raise ConfigError(
                f"{scripted[0]}= only applies to scripted faults, not to one request: {text!r}"
            )
        return _fault(tokens, text)

    @classmethod
    def from_prefer(cls, header: str) -> Fault | None:
        """The fault a ``Prefer`` header asks for; None when it names none.

        Preferences the fake does not know (``Prefer: wait=5``) are ignored, as RFC 7240 asks.
        """
        tokens = parse_tokens(header, only=_FAULT_TOKENS + _RULE_TOKENS)
        if not tokens:
            return None
        scripted = [name for name in tokens if name in _RULE_TOKENS]
        if scripted:
            raise ConfigError(
                f"{scripted[0]}= only applies to scripted faults, not to one request: {header!r}"
            )
        return _fault(tokens, header)


@dataclass
class FaultRule:
    """A scripted fault: which API requests it hits (``model``, ``probability``) and how often.

    ``times`` counts the requests the rule still fails (None: no limit). ``probability`` draws
    from a generator seeded with ``seed``, so the same requests fail on every run.
    """

    fault: Fault
    times: int | None = None
    probability: float = 1.0
    seed: int = 0
    model: str | None = None
    _random: random.Random = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.times is not None and self.times < 1:
            raise ConfigError(f"times={self.times!r} must be at least 1")
        if not 0 <= self.probability <= 1:
            raise ConfigError(f"probability={self.probability!r} must lie between 0 and 1")
        self._random = random.Random(self.seed)

    @classmethod
    def parse(cls, text: str) -> FaultRule:
        """A rule written as tokens (``code=503, times=2``); raises :class:`ConfigError`."""
        tokens = parse_tokens(text)
        fault = _fault({k: v for k, v in tokens.items() if k not in _RULE_TOKENS}, text)
        rule: dict[str, object] = {}
        if "times" in tokens:
            rule["times"] = integer("times", tokens["times"])
        if "probability" in tokens:
            rule["probability"] = number("probability", tokens["probability"])
        if "seed" in tokens:
            rule["seed"] = integer("seed", tokens["seed"])
        if tokens.get("model"):
            rule["model"] = tokens["model"]
        return cls(fault, **rule)  # type: ignore[arg-type]

    def fires(self, model: str | None) -> bool:
        """Whether this rule fails a request for ``model``; counts it against ``times``."""
        if self.model is not None and model != self.model:
            return False
        if self.probability < 1 and self._random.random() >= self.probability:
            return False
        if self.times is not None:
            self.times -= 1
        return True

    def __str__(self) -> str:
        tokens = [str(self.fault)]
        if self.times is not None:
            tokens.append(f"times={self.times}")
        if self.probability != 1:
            tokens.append(f"probability={show(self.probability)}, seed={self.seed}")
        if self.model is not None:
            tokens.append(f"model={self.model}")
        return ", ".join(tokens)


class FaultPlan:
    """The scripted faults and latency of one fake. Safe to change from another thread."""

    def __init__(self, rules: Iterable[str | FaultRule] = (), latency: str | Latency | None = None):
        self._lock = threading.Lock()
        self._rules: list[FaultRule] = []
        self._latency: Latency | None = None
        self._latency_random = random.Random(0)
        self.reset(rules, latency)

    @property
    def rules(self) -> list[FaultRule]:
        """The rules still active, first to be tried first."""
        with self._lock:
            return list(self._rules)

    @property
    def latency(self) -> Latency | None:
        return self._latency

    @property
    def idle(self) -> bool:
        """True when no rule and no latency is set: requests pass straight through."""
        return not self._rules and self._latency is None

    @property
    def has_rules(self) -> bool:
        return bool(self._rules)

    def fail(
        self,
        status: int | str | None = None,
        *,
        times: int | None = None,
        probability: float = 1.0,
        seed: int = 0,
        model: str | None = None,
        retry_after: int | None = None,
        delay: float = 0.0,
        transport: Transport | None = None,
        slow_body: float = DEFAULT_SLOW_BODY_SECONDS,
    ) -> FaultRule:
        """Add a rule: fail API requests with ``status`` (or a transport fault, or a delay).

        ``status`` may also be a whole rule as text (``"code=503, times=2"``).
        """
        if isinstance(status, str):
            return self.add(FaultRule.parse(status))
        fault = Fault(status, retry_after, delay, transport, slow_body)
        return self.add(FaultRule(fault, times, probability, seed, model))

    def add(self, rule: str | FaultRule) -> FaultRule:
        """Add a rule after the existing ones; returns it (its ``times`` counts down)."""
        rule = FaultRule.parse(rule) if isinstance(rule, str) else rule
        with self._lock:
            self._rules.append(rule)
        return rule

    def set_latency(self, latency: str | Latency | None) -> Latency | None:
        """Make successful generations take this long (None or ``"off"``: answer at once)."""
        parsed = Latency.parse(latency) if isinstance(latency, str) else latency
        with self._lock:
            self._latency = parsed
            self._latency_random = random.Random(parsed.seed if parsed else 0)
        return parsed

    def clear(self) -> None:
        """Remove every rule and the latency."""
        self.reset()

    def reset(
        self, rules: Iterable[str | FaultRule] = (), latency: str | Latency | None = None
    ) -> None:
        """Replace every rule and the latency (rules given as text start afresh)."""
        parsed = [FaultRule.parse(r) if isinstance(r, str) else r for r in rules]
        with self._lock:
            self._rules = parsed
        self.set_latency(latency)

    def pick(self, model: Callable[[], str | None]) -> Fault | None:
        """The fault for the next API request, from the first rule that fires; None if none.

        ``model`` is called only when a rule filters by model (it may parse the body).
        """
        if not self._rules:
            return None
        wanted = model() if any(r.model is not None for r in self._rules) else None
        with self._lock:
            for rule in self._rules:
                if rule.fires(wanted):
                    if rule.times == 0:
                        self._rules.remove(rule)
                    return rule.fault
        return None

    def delay_for(self, scale: Callable[[], float]) -> float:
        """Seconds a successful generation waits; ``scale`` gives images or megapixels."""
        latency = self._latency
        if latency is None:
            return 0.0
        factor = scale() if latency.per != "request" else 1.0
        with self._lock:
            return latency.sample(self._latency_random, factor)

    def describe(self) -> dict[str, object]:
        """The plan as JSON: ``{"faults": [rule, ...], "latency": text or null}``."""
        latency = self._latency
        return {
            "faults": [showable(str(r)) for r in self.rules],
            "latency": showable(str(latency)) if latency else None,
        }


def showable(text: str) -> str:
    """``text`` with any lone surrogate escaped, so it can be sent as UTF-8 JSON."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def rule_text(values: Mapping[str, object]) -> str:
    """A rule given as a JSON object (``{"code": 503, "times": 2}``) written as tokens."""
    tokens = []
    for name, value in values.items():
        name = name.replace("_", "-")
        if value is True:
            tokens.append(name)
        elif value is not None and value is not False:
            tokens.append(f"{name}={value}")
    return ", ".join(tokens)


def _fault(tokens: Mapping[str, str | None], text: str) -> Fault:
    values: dict[str, object] = {}
    transports = [name for name in ("close", "truncate", "slow-body") if name in tokens]
    if len(transports) > 1:
        raise ConfigError(f"{text!r}: choose one of close, truncate, slow-body")
    for name, value in tokens.items():
        if name == "code":
            values["status"] = integer(name, value)
        elif name == "retry-after":
            values["retry_after"] = integer(name, value)
        elif name == "delay":
            values["delay"] = number(name, value)
        elif name == "slow-body":
            values["transport"] = "slow-body"
            if value is not None:
                values["slow_body"] = number(name, value)
        elif name in ("close", "truncate"):
            if value is not None:
                raise ConfigError(f"{name} takes no value, got {name}={value}")
            values["transport"] = name
        else:
            known = ", ".join(_FAULT_TOKENS + _RULE_TOKENS)
            raise ConfigError(f"{text!r}: unknown token {name!r}; expected one of {known}")
    return Fault(**values)  # type: ignore[arg-type]
