"""The fake's behaviour, free of any web framework: authorise, choose the operation, validate,
synthesise the success body, serve images. :mod:`mock_server.http` puts HTTP around it."""

from __future__ import annotations

import asyncio
import dataclasses
import hmac
import os
import random
from dataclasses import dataclass

from anyio import CapacityLimiter, to_thread

from ..config import Settings
from ..errors import ApiError
from ..images.budget import MemoryBudget, render_cost
from ..images.cache import ImageCache
from ..images.memory import then_trim
from ..images.tokens import MAX_SIDE, decode_image_token, encode_image_tokens
from ..spec.load import SpecSet
from ..types import IMAGE_MEDIA_TYPES, JSON, ImageRequest, Operation, Violation
from .reading import LIMIT_CODE, LIMIT_MESSAGE
from .synthesis import (
    RequestReader,
    credits_used,
    has_image_slot,
    success_body_is_plain,
    success_json,
)
from .validation import SchemaValidator, detail_lines, show, summarise, zod_type


@dataclass(slots=True)
class Generation:
    """A successful generation: what was asked for and the body to send (JSON text)."""

    operation: Operation
    request: ImageRequest
    content: bytes
    urls: list[str]
    credits: int
    """What the generation costs, as ``meta.usage`` reports it."""
    unfetched_inputs: tuple[str, ...] = ()
    """``image_urls`` items accepted without downloading them."""


class ImageService:
    """One fake API: the loaded specs plus settings, answering requests as data."""

    def __init__(self, settings: Settings, spec_set: SpecSet, image_route: str = "/files") -> None:
        self.settings = settings
        self.image_route = image_route
        """The path images are served under (the HTTP layer's choice)."""
        self.spec_set = spec_set
        self.cache = ImageCache(settings.image_cache_bytes)
        self._secret = settings.url_secret.encode("utf-8")
        by_schema: dict[int, SchemaValidator] = {}
        for operation in spec_set:
            # Operations listing several models share one schema object; compile it once.
            key = id(operation.request_schema)
            if key not in by_schema:
                by_schema[key] = SchemaValidator(operation.request_schema)
        # What generate() needs per operation, in one lookup: validator, reader, the success
        # schema to synthesise from (None when synthesising adds nothing, as for most specs), and
        # whether its answers carry image URLs at all (a job-shaped body does not).
        self._plans = {
            id(operation): (
                by_schema[id(operation.request_schema)],
                RequestReader(operation),
                None
                if success_body_is_plain(operation.success_schema)
                else operation.success_schema,
                has_image_slot(operation.success_schema),
            )
            for operation in spec_set
        }
        self._seeds = random.Random()
        self._rendering: dict[str, asyncio.Future[bytes]] = {}
        self._render_limiter: CapacityLimiter | None = None
        self.renders = 0
        """Images rendered so far (read by the metrics)."""
        self._render_memory = MemoryBudget(settings.render_memory_bytes)
        self.max_side = largest_side(spec_set)
        """Image URLs for a larger width or height are refused (404) without rendering."""

    def validator(self, operation: Operation) -> SchemaValidator:
        return self._plans[id(operation)][0]

    def authorize(self, authorization: str | None) -> None:
        """Raise a 401 unless the ``Authorization`` header passes the configured auth mode."""
        if self.settings.auth == "off":
            return
        scheme, _, token = (authorization or "").strip().partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise ApiError(401)
        if self.settings.auth == "keys" and not any(
            hmac.compare_digest(token.encode(), key.encode()) for key in self.settings.api_keys
        ):
            raise ApiError(401)

    def select_operation(self, method: str, path: str, body: JSON) -> Operation:
        """The operation for the body's ``model``, or a 400 naming the models this path serves."""
        by_model = self.spec_set.models_for(method, path)
        if not isinstance(body, dict):
            raise _invalid(
                [
                    Violation(
                        (),
                        "invalid_type",
                        f"Expected object, received {zod_type(body)}",
                        expected="object",
                        received=summarise(body),
                    )
                ]
            )
        model = body.get("model")
        if isinstance(model, str) and model in by_model:
            return by_model[model]
        if "model" not in body:
            problem = Violation(("model",), "invalid_type", "Required", expected="string")
        elif not isinstance(model, str):
            problem = Violation(
                ("model",),
                "invalid_type",
                f"Expected string, received {zod_type(model)}",
                expected="string",
                received=summarise(model),
            )
        else:
            choices = " | ".join(show(known) for known in sorted(by_model))
            problem = Violation(
                ("model",),
                "invalid_enum_value",
                f"Invalid enum value. Expected {choices}, received {show(model)}",
                expected=sorted(by_model),
                received=summarise(model),
            )
        others: list[Violation] = []
        if len(by_model) == 1:
            # Only one schema is possible on this path, so the rest of the body can be checked too.
            only = next(iter(by_model.values()))
            others = [v for v in self.validator(only).violations(body) if v.path[:1] != ("model",)]
        raise _invalid([problem, *others])

    def generate(self, method: str, path: str, body: JSON, base_url: str) -> Generation:
        """Validate ``body`` for ``method path`` and build the success body, or raise a 400.

        ``base_url`` is where the client reached the fake (``http://127.0.0.1:8000``); image URLs
        start from it, or from the configured public URL.
        """
        operation = self.select_operation(method, path, body)
        validator, reader, success_schema, has_images = self._plans[id(operation)]
        violations = validator.violations(body)
        if violations:
            raise _invalid(violations)
        assert isinstance(body, dict)  # select_operation made sure
        request = reader.read(body, self._pick_seed)
        limits = reader.limits(body, request)
        if limits:
            # Valid for the spec, but more than the fake draws: said in the envelope, as data.
            raise ApiError(400, "\n".join([LIMIT_MESSAGE, *detail_lines(limits)]), limits)
        base = (self.settings.public_base_url or base_url).rstrip("/")
        unfetched: tuple[str, ...] = ()
        if "image_urls" in body and "image_urls" in operation.request_schema.get("properties", ()):
            from .inputs import FetchPolicy, check_image_urls  # Pillow: loaded for edits only

            checked = check_image_urls(
                body["image_urls"],
                secret=self._secret,
                image_route=self.image_route,
                local_bases=(base, base_url.rstrip("/")),
                fetch=FetchPolicy() if self.settings.fetch_input_images else None,
            )
            if checked.violations:
                raise _invalid(checked.violations)
            request = dataclasses.replace(request, inputs=checked.images)
            unfetched = checked.unfetched
        urls: list[str] = []
        if has_images:
            folder, extension = f"{base}{self.image_route}/", f".{request.format}"
            urls = [folder + token + extension for token in self._tokens(request)]
        credits = credits_used(operation, request)
        content = success_json(success_schema, urls, credits, request)
        return Generation(operation, request, content, urls, credits, unfetched)

    def _tokens(self, request: ImageRequest) -> list[str]:
        try:
            return encode_image_tokens(request, self._secret)
        except ValueError:
            # limits() keeps sizes, counts and seeds in range; what is left is a prompt or model
            # too long for a URL.
            problem = Violation(
                ("prompt",),
                LIMIT_CODE,
                "aimlapi-mock cannot fit this model name and prompt into an image URL",
            )
            raise ApiError(400, f"{LIMIT_MESSAGE}\nprompt: {problem.message}", [problem]) from None

    def cached_image(self, name: str) -> tuple[bytes, str] | None:
        """:meth:`image`, for an image rendered before and still in the cache; else None."""
        media_type = IMAGE_MEDIA_TYPES.get(name.rpartition(".")[2])
        if media_type is None:
            return None
        cached = self.cache.get(name)  # only verified names are ever cached
        return None if cached is None else (cached, media_type)

    async def image(self, name: str) -> tuple[bytes, str] | None:
        """The bytes and media type of the image behind ``<token>.<format>``; None if unknown."""
        cached = self.cached_image(name)
        if cached is not None:
            return cached
        token, _, extension = name.rpartition(".")
        media_type = IMAGE_MEDIA_TYPES.get(extension)
        if media_type is None:
            return None
        spec = decode_image_token(token, self._secret, self.max_side)
        if spec is None or spec.format != extension:
            return None
        pending = self._rendering.get(name)
        if pending is None:
            from ..images.render import render_placeholder  # Pillow: loaded on the first render

            # Concurrent downloads of one new image share a single render.
            pending = asyncio.get_running_loop().create_future()
            self._rendering[name] = pending
            try:
                async with self._render_memory.hold(render_cost(spec.width, spec.height)):
                    data = await to_thread.run_sync(
                        then_trim, render_placeholder, spec, limiter=self._render_slots()
                    )
                self.renders += 1
                self.cache.put(name, data)
                pending.set_result(data)
            except BaseException as error:
                pending.set_exception(error)
                raise
            finally:
                del self._rendering[name]
        return await asyncio.shield(pending), media_type

    def _render_slots(self) -> CapacityLimiter:
        # Renders are CPU-bound: more at once than cores only adds memory (a 2048x2048 WebP
        # takes tens of MB while it is encoded). Made on first use, inside the event loop.
        if self._render_limiter is None:
            self._render_limiter = CapacityLimiter(max(1, min(4, os.cpu_count() or 1)))
        return self._render_limiter

    def _pick_seed(self) -> int:
        """A seed in 1..2**31-1, uniformly (``randint`` does the same several times slower)."""
        seed = 0
        while not seed:
            seed = self._seeds.getrandbits(31)
        return seed


def largest_side(spec_set: SpecSet) -> int:
    """The largest ``width`` or ``height`` any loaded request schema allows (the token format's
    own limit when a schema declares such a field without a maximum, or declares none)."""
    found: list[int] = []
    unbounded = False
    seen: set[int] = set()

    def visit(node: JSON) -> None:
        nonlocal unbounded
        if isinstance(node, dict | list):
            if id(node) in seen:  # resolved references may share (or cycle back to) a node
                return
            seen.add(id(node))
        if isinstance(node, dict):
            properties = node.get("properties")
            if isinstance(properties, dict):
                for name in ("width", "height"):
                    field = properties.get(name)
                    if isinstance(field, dict):
                        most = field.get("maximum")
                        if isinstance(most, int | float) and not isinstance(most, bool):
                            found.append(int(most))
                        else:
                            unbounded = True
            for value in node.values():
                visit(value)
        elif isinstance(node, list):
            for value in node:
                visit(value)

    for operation in spec_set:
        visit(operation.request_schema)
    if unbounded or not found:
        return MAX_SIDE
    return min(MAX_SIDE, max(found))


def _invalid(violations: list[Violation]) -> ApiError:
    message = "\n".join(["Body validation error", *detail_lines(violations)])
    return ApiError(400, message, violations)
