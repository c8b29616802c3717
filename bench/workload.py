"""What the benchmark sends: request bodies, signed image URLs, and files of requests to replay."""

from __future__ import annotations

import json
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from mock_server.images.tokens import encode_image_token
from mock_server.types import ImageFormat, ImageSpec

GENERATIONS = "/v1/images/generations"
MODEL = "blackforestlabs/flux-2"
PROMPT = "A T-Rex relaxing on a beach, lying on a sun lounger and wearing sunglasses."
URL_SECRET = "bench-url-secret"
"""The fake under test runs with this ``--url-secret``, so the harness signs image URLs itself."""

AUTHORIZATION = "Bearer bench-key"

VALID_BODY = {"model": MODEL, "prompt": PROMPT, "image_size": {"width": 1472, "height": 512}}
"""The request of the API docs' example."""

INVALID_BODY = {
    "model": MODEL,
    "prompt": PROMPT,
    "image_size": {"width": 1000, "height": 4096},
    "output_format": "gif",
}
"""Three violations: width not a multiple of 32, height over 2048, an unknown format."""

FORMATS: tuple[ImageFormat, ...] = ("png", "jpeg", "webp")
RENDER_SIZES = ((512, 512), (1024, 768), (2048, 2048))


@dataclass(frozen=True)
class Request:
    """One HTTP request to send; ``body`` is sent as JSON when not None."""

    method: str
    path: str
    body: bytes | None = None

    @classmethod
    def post(cls, path: str, body: object) -> Request:
        return cls("POST", path, json.dumps(body, separators=(",", ":")).encode())


def image_path(spec: ImageSpec) -> str:
    """The path the fake serves ``spec`` at, signed with :data:`URL_SECRET`."""
    token = encode_image_token(spec, URL_SECRET.encode())
    return f"/files/{token}.{spec.format}"


def render_requests(
    width: int, height: int, image_format: ImageFormat, count: int, first_seed: int
) -> list[Request]:
    """``count`` GETs of images never rendered before: each one has a seed of its own."""
    return [
        Request("GET", image_path(ImageSpec(MODEL, PROMPT, width, height, image_format, seed, 0)))
        for seed in range(first_seed, first_seed + count)
    ]


def mixed_requests(rng: random.Random, count: int, image_pool: int) -> list[Request]:
    """A mix of valid and invalid generations and image downloads, random sizes and formats.

    Valid requests 40 %, invalid 20 %, image GETs 40 % drawn from ``image_pool`` distinct
    images (so the image cache both hits and evicts).
    """
    pool = [
        Request("GET", image_path(ImageSpec(MODEL, PROMPT, *_random_size(rng), fmt, seed, 0)))
        for seed, fmt in ((seed, rng.choice(FORMATS)) for seed in range(1, image_pool + 1))
    ]
    invalid = [
        INVALID_BODY,
        {"model": MODEL},
        {"model": "blackforestlabs/flux-3", "prompt": PROMPT},
        {"model": MODEL, "prompt": PROMPT, "num_images": 9, "seed": -1},
    ]
    out: list[Request] = []
    for _ in range(count):
        draw = rng.random()
        if draw < 0.4:
            width, height = _random_size(rng)
            body = {
                "model": MODEL,
                "prompt": PROMPT,
                "image_size": {"width": width, "height": height},
                "output_format": rng.choice(FORMATS),
                "num_images": rng.randint(1, 4),
            }
            out.append(Request.post(GENERATIONS, body))
        elif draw < 0.6:
            out.append(Request.post(GENERATIONS, rng.choice(invalid)))
        else:
            out.append(rng.choice(pool))
    return out


def _random_size(rng: random.Random) -> tuple[int, int]:
    return rng.randrange(512, 2049, 32), rng.randrange(512, 2049, 32)


def write_replay_file(path: Path, requests: Iterable[Request]) -> Path:
    """Write ``requests`` in the format ``bench/replay.lua`` reads."""
    with path.open("wb") as out:
        for request in requests:
            body = request.body or b""
            out.write(f"{request.method}\t{request.path}\t{len(body)}\n".encode())
            out.write(body + b"\n")
    return path


def encode_http(request: Request, host: str) -> bytes:
    """``request`` as HTTP/1.1 bytes on a keep-alive connection (for the Python driver)."""
    lines = [
        f"{request.method} {request.path} HTTP/1.1",
        f"Host: {host}",
        f"Authorization: {AUTHORIZATION}",
    ]
    if request.body is not None:
        lines += ["Content-Type: application/json", f"Content-Length: {len(request.body)}"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + (request.body or b"")


def as_list(requests: Sequence[Request] | Request) -> list[Request]:
    return [requests] if isinstance(requests, Request) else list(requests)
