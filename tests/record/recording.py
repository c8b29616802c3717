"""A recording proxy in front of a loopback upstream (a second fake with a known key)."""

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mock_server import Settings, create_app, load_specs
from mock_server.http.server import BackgroundServer
from mock_server.record import Budget, Recorder, RecordSettings, build_recorder
from tests.served import RecordingApp, serve_fake

KEY = "sk-upstream-0123456789abcdef"
"""The upstream's key: it must appear nowhere in a cassette."""
CALLER = "Bearer caller-key-never-forwarded"
GENERATIONS = "/v1/images/generations"
FLUX = {"model": "blackforestlabs/flux-2", "prompt": "a cat", "image_size": "square", "seed": 7}
FLUX_MAX = {
    "model": "blackforestlabs/flux-2-max",
    "prompt": "a dog",
    "image_size": {"width": 512, "height": 768},
    "output_format": "jpeg",
}


@dataclass
class Recording:
    proxy_url: str
    upstream_url: str
    upstream: RecordingApp
    recorder: Recorder
    cassette: Path
    findings: list[str] = field(default_factory=list)


@contextmanager
def upstream(*deviations: str) -> Iterator[tuple[str, RecordingApp]]:
    """The stand-in for the real API: a fake on loopback accepting only ``KEY``."""
    with serve_fake(auth="keys", api_keys=(KEY,), deviations=deviations) as served:
        yield served


@contextmanager
def proxy(
    cassette: Path, upstream_url: str, upstream_app: RecordingApp, **record: Any
) -> Iterator[Recording]:
    """A recording proxy on loopback in front of ``upstream_url``, writing into ``cassette``."""
    spec_set = load_specs()
    findings: list[str] = []
    settings = RecordSettings(str(cassette), upstream=upstream_url, **record)
    recorder = build_recorder(
        settings, spec_set, KEY, budget=Budget(settings.max_requests), report=findings.append
    )
    app = create_app(Settings(), spec_set=spec_set, source=recorder)
    with BackgroundServer(app) as server:
        yield Recording(server.base_url, upstream_url, upstream_app, recorder, cassette, findings)
