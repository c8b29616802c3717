"""Latency the fake adds to successful generations, to mimic real generation time.

Written as tokens, like faults: ``fixed=0.5`` (or just ``0.5``), ``uniform=0.2..1.5``,
``lognormal=8, sigma=0.4``; then optionally ``per=image`` or ``per=megapixel``, ``max=30`` and
``seed=7``.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import Literal, get_args

from ..errors import ConfigError
from .syntax import integer, is_number, number, parse_tokens, show

MAX_DELAY_SECONDS = 3600.0
"""No latency or fault holds an answer longer than this (a client gives up long before)."""

__all__ = ["Latency"]

Distribution = Literal["fixed", "uniform", "lognormal"]
LatencyUnit = Literal["request", "image", "megapixel"]


@dataclass(frozen=True)
class Latency:
    """How long a successful generation takes, in seconds.

    ``fixed`` waits ``seconds``; ``uniform`` draws between ``seconds`` and ``high``;
    ``lognormal`` draws around the median ``seconds`` with spread ``sigma``. With ``per`` set to
    ``image`` or ``megapixel`` the draw is multiplied by the image count, or by the megapixels of
    all images; ``cap`` bounds the result.
    """

    distribution: Distribution = "fixed"
    seconds: float = 0.0
    high: float | None = None
    sigma: float = 0.5
    per: LatencyUnit = "request"
    cap: float | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        if self.distribution not in get_args(Distribution):
            raise ConfigError(
                f"latency {self.distribution!r} is not one of 'fixed', 'uniform', 'lognormal'"
            )
        if self.per not in get_args(LatencyUnit):
            raise ConfigError(f"per={self.per!r} is not one of 'request', 'image', 'megapixel'")
        for name in ("seconds", "high", "sigma", "cap"):
            value = getattr(self, name)
            if value is not None and (not math.isfinite(value) or value < 0):
                raise ConfigError(f"latency {name} {value!r} must be a number, 0 or more")
        if self.distribution == "uniform" and (self.high is None or self.high < self.seconds):
            raise ConfigError("uniform latency needs LOW..HIGH with LOW <= HIGH")
        if self.distribution == "lognormal" and self.seconds <= 0:
            raise ConfigError("log-normal latency needs a median above 0")

    @classmethod
    def parse(cls, text: str) -> Latency | None:
        """Latency written as tokens; ``off`` (or nothing) means none."""
        if text.strip().lower() in ("", "off", "none", "0"):
            return None
        tokens = parse_tokens(text)
        values: dict[str, object] = {}
        first = next(iter(tokens))
        if first not in get_args(Distribution):
            if tokens[first] is None and is_number(first):  # a bare number: fixed latency
                tokens = {"fixed": first, **{k: v for k, v in tokens.items() if k != first}}
            else:
                raise ConfigError(
                    f"latency {text!r} must start with fixed=S, uniform=LOW..HIGH or lognormal=M"
                )
        for name, value in tokens.items():
            if name in get_args(Distribution):
                values["distribution"] = name
                low, dots, high = (value or "").partition("..")
                values["seconds"] = number(name, low)
                if dots:
                    values["high"] = number(name, high)
            elif name == "sigma":
                values["sigma"] = number(name, value)
            elif name == "max":
                values["cap"] = number(name, value)
            elif name == "per":
                values["per"] = value
            elif name == "seed":
                values["seed"] = integer(name, value)
            else:
                raise ConfigError(f"latency {text!r}: unknown token {name!r}")
        return cls(**values)  # type: ignore[arg-type]

    def sample(self, rng: random.Random, scale: float = 1.0) -> float:
        """One delay in seconds; ``scale`` is the image count or megapixels when ``per`` says."""
        if self.distribution == "uniform":
            assert self.high is not None
            value = rng.uniform(self.seconds, self.high)
        elif self.distribution == "lognormal":
            try:
                value = rng.lognormvariate(math.log(self.seconds), self.sigma)
            except OverflowError:  # a huge sigma: the draw is beyond any float
                value = math.inf
        else:
            value = self.seconds
        if self.per != "request":
            value *= scale
        value = value if self.cap is None else min(value, self.cap)
        return min(value, MAX_DELAY_SECONDS)

    def __str__(self) -> str:
        if self.distribution == "uniform":
            tokens = [f"uniform={show(self.seconds)}..{show(self.high or 0)}"]
        else:
            tokens = [f"{self.distribution}={show(self.seconds)}"]
        if self.distribution == "lognormal":
            tokens.append(f"sigma={show(self.sigma)}")
        if self.per != "request":
            tokens.append(f"per={self.per}")
        if self.cap is not None:
            tokens.append(f"max={show(self.cap)}")
        if self.distribution != "fixed":
            tokens.append(f"seed={self.seed}")
        return ", ".join(tokens)
