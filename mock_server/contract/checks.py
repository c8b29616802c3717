"""The suite's own schemathesis checks, and the cost guard's hook.

Checks and hooks are registered with schemathesis globally, as its API requires; each one does
nothing unless the schema it is called for belongs to a contract run (see :func:`attach`), so
other schemathesis users in the same process are not affected.
"""

from __future__ import annotations

import base64
import binascii
import io
import math
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import urlsplit

import requests
import schemathesis
from PIL import Image, UnidentifiedImageError
from schemathesis import Case, CheckContext, HookContext, Response
from schemathesis.schemas import BaseSchema

from ..engine.reading import LIMIT_CODE
from ..engine.shapes import CREDITS_PER_USD
from ..engine.synthesis import image_request, image_slot
from ..engine.validation import SchemaValidator, detail_lines
from ..spec.load import SpecSet
from ..types import ImageRequest, Operation
from .documents import ENVELOPE_FIELDS, ContractDocument, is_envelope_schema
from .findings import PROBLEM_JSON, Drift, rename_finding, renamed_fields, undocumented_fields
from .guard import BudgetExhausted, CostGuard, SentRequest
from .settings import is_loopback

CUSTOM_CHECKS = (
    "image_urls_serve_requested_images",
    "one_entry_per_image",
    "error_envelope_conformance",
    "documented_response_fields",
    "tracing_and_cost_headers",
)
_PIL_FORMATS = {"png": "PNG", "jpeg": "JPEG", "webp": "WEBP", "gif": "GIF", "tiff": "TIFF"}
_DOWNLOAD_TIMEOUT = 120


@dataclass
class RunContext:
    """What the checks of one contract run need beyond the response: the spec and a way out."""

    document: ContractDocument
    downloads: requests.Session
    """Fetches image URLs (in-process for the fake); never carries the API key."""
    allow_remote: bool = False
    guard: CostGuard | None = None
    served: SpecSet | None = None
    """Every spec file's operations, so a model defined by several files is checked against
    the definition the fake serves (see :func:`mock_server.spec.load.preferred_definition`)."""
    _validators: dict[int, SchemaValidator] = field(default_factory=dict)
    valid_answers: dict[str, dict[int, int]] = field(default_factory=dict)
    """Statuses that schema-valid requests got, by operation label."""
    first_refusal: dict[str, str] = field(default_factory=dict)
    limited: dict[str, int] = field(default_factory=dict)
    """Schema-valid requests answered with a documented limit of the fake, by operation label."""
    _pending: dict[str, SentRequest] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def operation(self, case: Case[Any]) -> Operation | None:
        body = case.body if isinstance(case.body, dict) else {}
        operation = self.document.operation(case.method.upper(), case.path, body.get("model"))
        if operation is None or self.served is None:
            return operation
        return self.served.served(operation)

    def request_problems(self, case: Case[Any]) -> list[str]:
        """What is wrong with the case's body, zod-style; empty when the spec accepts it."""
        operation = self.operation(case)
        if operation is None:
            return []
        key = id(operation.request_schema)
        with self._lock:
            validator = self._validators.get(key)
            if validator is None:
                validator = self._validators[key] = SchemaValidator(operation.request_schema)
        return detail_lines(validator.violations(case.body))

    def requested_images(self, case: Case[Any]) -> ImageRequest | None:
        """What a schema-valid body asks for (size, format, count), None for any other body."""
        operation = self.operation(case)
        if operation is None or not isinstance(case.body, dict) or self.request_problems(case):
            return None
        return image_request(operation, case.body)

    def download(self, url: str) -> bytes:
        if (
            not self.allow_remote
            and not is_loopback(url)
            and urlsplit(url).hostname != "testserver"
        ):
            raise Drift(
                "image-remote",
                f"image URL {url} is not on this machine; not downloaded without --allow-remote",
            )
        response = self.downloads.get(url, timeout=_DOWNLOAD_TIMEOUT)
        if response.status_code != 200:
            raise Drift("image-download", f"image URL answers {response.status_code}")
        return response.content


_RUNS: dict[int, RunContext] = {}


@contextmanager
def attach(schema: BaseSchema, context: RunContext) -> Iterator[RunContext]:
    """Make ``context`` what the checks and hooks use while ``schema`` is being tested."""
    _RUNS[id(schema)] = context
    try:
        yield context
    finally:
        del _RUNS[id(schema)]


def _guarded_run_active() -> bool:
    return any(run.guard is not None for run in _RUNS.values())


def _run_of(case: Case[Any]) -> RunContext | None:
    return _RUNS.get(id(case.operation.schema))


@schemathesis.hook
def before_call(context: HookContext, case: Case[Any], kwargs: dict[str, Any]) -> None:
    """The cost guard: count each request to an image operation, refuse past the cap."""
    run = _run_of(case)
    if run is None:
        if _guarded_run_active():
            # Fail closed: a request the guard cannot attribute to its run is not sent.
            raise BudgetExhausted(f"{case.operation.label}: not part of the guarded run")
        return
    if run.guard is None or run.operation(case) is None:
        return
    sent = run.guard.admit(f"{run.document.name} {case.operation.label}", case.body)
    with run._lock:
        run._pending[case.id] = sent


@schemathesis.hook
def after_call(context: HookContext, case: Case[Any], response: Response) -> None:
    """Note how schema-valid requests were answered, and what each guarded request cost."""
    run = _run_of(case)
    if run is None or run.operation(case) is None:
        return
    body = _json(response)
    if isinstance(case.body, dict) and not run.request_problems(case):
        label = f"{run.document.name} {case.operation.label}"
        if is_limit_answer(body):
            with run._lock:
                run.limited[label] = run.limited.get(label, 0) + 1
            return
        with run._lock:
            answers = run.valid_answers.setdefault(label, {})
            answers[response.status_code] = answers.get(response.status_code, 0) + 1
            if not _is_success(response) and label not in run.first_refusal:
                message = body.get("message") if isinstance(body, dict) else None
                run.first_refusal[label] = (
                    str(message or "").splitlines()[0][:160] if message else ""
                )
    with run._lock:
        sent = run._pending.pop(case.id, None)
    if sent is None:
        return
    sent.status = response.status_code
    usage = body.get("meta", {}).get("usage") if isinstance(body, dict) else None
    if isinstance(usage, dict):
        credits = usage.get("credits_used", usage.get("tokens_used"))
        sent.credits = credits if isinstance(credits, int | float) else None


def is_limit_answer(body: Any) -> bool:
    """Whether an error body is the fake refusing for its own documented limits only."""
    violations = body.get("violations") if isinstance(body, dict) else None
    return (
        isinstance(violations, list)
        and bool(violations)
        and all(isinstance(v, dict) and v.get("code") == LIMIT_CODE for v in violations)
    )


def refusals(run: RunContext) -> dict[str, tuple[str, str, int]]:
    """(key, sentence, count) for each operation where no schema-valid request succeeded."""
    found = {}
    for label, answers in run.valid_answers.items():
        if any(200 <= status < 300 for status in answers):
            continue
        statuses = " or ".join(str(status) for status in sorted(answers))
        reason = run.first_refusal.get(label)
        found[label] = (
            f"no-success:{statuses}",
            f"no schema-valid request succeeded; all were answered {statuses}"
            + (f": {reason}" if reason else ""),
            sum(answers.values()),
        )
    return found


@schemathesis.check
def image_urls_serve_requested_images(
    ctx: CheckContext, response: Response, case: Case[Any]
) -> bool | None:
    """Every returned image downloads and decodes at exactly the requested size and format."""
    run = _run_of(case)
    wanted = run.requested_images(case) if run and _is_success(response) else None
    body = _json(response)
    if run is None or wanted is None or not isinstance(body, dict):
        return None
    slot = image_slot(_success_schema(run, case, response))
    entries = _image_entries(body, slot) if slot is not None else None
    for number, entry in enumerate(entries or [], start=1):
        if not isinstance(entry, dict):
            continue
        if isinstance(entry.get("url"), str):
            content = run.download(entry["url"])
        elif isinstance(entry.get("b64_json"), str):
            try:
                content = base64.b64decode(entry["b64_json"], validate=True)
            except (binascii.Error, ValueError):
                raise Drift("image-b64", "b64_json is not valid base64") from None
        else:
            continue
        _check_image(content, wanted, number)
    return None


def _check_image(content: bytes, wanted: ImageRequest, number: int) -> None:
    try:
        with Image.open(io.BytesIO(content)) as image:
            image.load()
            size, found = image.size, image.format
    except (UnidentifiedImageError, OSError, ValueError) as error:
        raise Drift("image-undecodable", f"image {number} does not decode: {error}") from None
    if size != (wanted.width, wanted.height):
        raise Drift(
            "image-size",
            f"images of the wrong size: {size[0]}×{size[1]} served for a "
            f"{wanted.width}×{wanted.height} request",
        )
    if found != _PIL_FORMATS[wanted.format]:
        raise Drift(
            f"image-format:{wanted.format}",
            f"images in the wrong format: {found} served for output_format {wanted.format!r}",
        )


@schemathesis.check
def one_entry_per_image(ctx: CheckContext, response: Response, case: Case[Any]) -> bool | None:
    """A successful response lists one entry, with a url or b64_json, per requested image."""
    run = _run_of(case)
    wanted = run.requested_images(case) if run and _is_success(response) else None
    body = _json(response)
    if run is None or wanted is None or not isinstance(body, dict):
        return None
    slot = image_slot(_success_schema(run, case, response))
    if slot is None or not slot[1]:
        return None  # the answer lists no images (a job's status), or holds a single one
    path, _ = slot
    data = _walk(body, path)
    images = f"{wanted.count} image{'s' if wanted.count != 1 else ''} requested"
    name = ".".join(path) or "the body"
    if data is None:
        raise Drift(f"{name}-null", f"{name} is null in a successful response, {images}")
    if not isinstance(data, list):
        return None  # the schema check reports the type
    asked = case.body.get("num_images") if isinstance(case.body, dict) else None
    fractional = isinstance(asked, float) and not math.isclose(asked, round(asked))
    if len(data) != wanted.count and not fractional:
        raise Drift("image-count", f"{len(data)} entries in {name}, {images}")
    for entry in data:
        if not isinstance(entry, dict) or not (entry.get("url") or entry.get("b64_json")):
            raise Drift("image-missing", "an entry in data has neither url nor b64_json")
    return None


@schemathesis.check
def error_envelope_conformance(
    ctx: CheckContext, response: Response, case: Case[Any]
) -> bool | None:
    """An error body is the documented envelope, and its statusCode is the response's status."""
    run = _run_of(case)
    status = response.status_code
    operation = run.operation(case) if run else None
    if (
        operation is None
        or status < 400
        or not is_envelope_schema(operation.response_schemas.get(status))
    ):
        return None
    if _media_type(response).startswith("application/problem+json"):
        raise Drift(*PROBLEM_JSON)
    body = _json(response)
    if not isinstance(body, dict):
        raise Drift(f"envelope-not-json:{status}", f"{status} error body is not a JSON object")
    missing = [name for name in ENVELOPE_FIELDS if name not in body]
    if missing:
        raise Drift(
            f"envelope-missing:{','.join(missing)}",
            f"error envelope lacks {', '.join(missing)}",
        )
    if body["statusCode"] != status:
        raise Drift(
            "envelope-status",
            f"statusCode {body['statusCode']!r} in the body of a {status} response",
        )
    return None


@schemathesis.check
def documented_response_fields(
    ctx: CheckContext, response: Response, case: Case[Any]
) -> bool | None:
    """A successful body has no field the spec does not declare (renamed ones included)."""
    run = _run_of(case)
    operation = run.operation(case) if run and _is_success(response) else None
    schema = operation.response_schemas.get(response.status_code) if operation else None
    if operation is not None and schema is None:
        successes = [s for s in operation.response_schemas if 200 <= s < 300]
        schema = operation.response_schemas.get(successes[0]) if successes else None
    body = _json(response)
    if schema is None or body is None:
        return None
    for path, missing, present in renamed_fields(body, schema):
        raise Drift(*rename_finding(path, missing, present))
    for name in undocumented_fields(body, schema):
        raise Drift(f"undocumented:{name}", f"{name} present, spec does not document it")
    return None


@schemathesis.check
def tracing_and_cost_headers(ctx: CheckContext, response: Response, case: Case[Any]) -> bool | None:
    """Every answer of an inference operation carries ``x-inference-id``; a JSON answer also
    the cost headers, which agree with each other and with ``meta.usage.credits_used``."""
    if _run_of(case) is None:
        return None
    headers = {name: _header(response, name) for name in TRACING_HEADERS}
    drift = header_drift(headers, _media_type(response), _json(response), _is_success(response))
    if drift is not None:
        raise drift
    return None


TRACING_HEADERS = ("x-inference-id", "x-aimlapi-credits-used", "x-aimlapi-usd-spent")
CREDITS_HEADER, USD_HEADER = TRACING_HEADERS[1:]


def header_drift(
    headers: dict[str, str], media_type: str, body: Any, success: bool
) -> Drift | None:
    """What is wrong with an answer's tracing and cost headers (by lower-case name), if any."""
    if not headers.get("x-inference-id"):
        return Drift("header-missing:x-inference-id", "x-inference-id header missing")
    if "json" not in media_type:
        return None
    credits, usd = headers.get(CREDITS_HEADER, ""), headers.get(USD_HEADER, "")
    for name, value in ((CREDITS_HEADER, credits), (USD_HEADER, usd)):
        if not value:
            return Drift(f"header-missing:{name}", f"{name} header missing on a JSON answer")
    if not credits.isdigit():
        return Drift("header-credits", f"{CREDITS_HEADER} {credits!r} is not a whole number")
    try:
        dollars: Decimal | None = Decimal(usd)
    except InvalidOperation:
        dollars = None
    if dollars is None or dollars != Decimal(int(credits)) / CREDITS_PER_USD:
        return Drift(
            "header-usd",
            f"{USD_HEADER} {usd} is not {CREDITS_HEADER} {credits} / {CREDITS_PER_USD:,}",
        )
    usage = _walk(body, ("meta", "usage")) if success else None
    in_body = usage.get("credits_used") if isinstance(usage, dict) else None
    numeric = isinstance(in_body, int | float) and not isinstance(in_body, bool)
    if numeric and in_body != int(credits):
        return Drift(
            "header-credits-body", f"{CREDITS_HEADER} {credits}, meta.usage.credits_used {in_body}"
        )
    return None


def _header(response: Response, name: str) -> str:
    values = response.headers.get(name) or [""]
    return str(values[0]).strip()


def _success_schema(run: RunContext, case: Case[Any], response: Response) -> Any:
    operation = run.operation(case)
    if operation is None:
        return None
    return operation.response_schemas.get(response.status_code, operation.success_schema)


def _walk(body: Any, path: tuple[str, ...]) -> Any:
    for name in path:
        body = body.get(name) if isinstance(body, dict) else None
    return body


def _image_entries(body: Any, slot: tuple[tuple[str, ...], bool]) -> list[Any]:
    path, is_list = slot
    found = _walk(body, path)
    if is_list:
        return found if isinstance(found, list) else []
    return [found] if isinstance(found, dict) else []


def _is_success(response: Response) -> bool:
    return 200 <= response.status_code < 300


def _media_type(response: Response) -> str:
    values = response.headers.get("content-type") or [""]
    return values[0].lower()


def _json(response: Response) -> Any:
    if "json" not in _media_type(response):
        return None
    try:
        return response.json()
    except ValueError:
        return None
