"""Tracing values the API puts on every inference answer: its inference id, and the client's own
request id when it is well-formed.

The API answers ``x-inference-id`` always (21 characters of ``A-Za-z0-9_-``, nanoid's alphabet,
e.g. ``V1StGXR8Z5jdHi6BmyT8k``) and echoes ``X-Client-Request-Id`` as ``x-client-request-id`` only
when it is 1-128 characters of ``A-Za-z0-9._:-``; any other value is dropped without failing the
request ("a malformed header is never a reason to fail a request").
"""

from __future__ import annotations

import base64
import re
from random import getrandbits

__all__ = ["CLIENT_REQUEST_ID", "INFERENCE_ID_CHARS", "client_request_id", "new_inference_id"]

INFERENCE_ID_CHARS = 21
"""The length of an inference id."""

CLIENT_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
"""What a client request id must match, whole, to be kept."""

_b64 = base64.urlsafe_b64encode  # its alphabet is nanoid's: A-Z a-z 0-9 - _


def new_inference_id() -> str:
    """A random 21-character id in the API's style, such as ``V1StGXR8Z5jdHi6BmyT8k``.

    126 random bits, like nanoid's default, from Python's own generator: an id only has to be
    unique, not unguessable, and this runs for every answer (see :mod:`.ids`).
    """
    return _b64(getrandbits(128).to_bytes(16, "big"))[:INFERENCE_ID_CHARS].decode("ascii")


def client_request_id(value: str | None) -> str | None:
    """``value`` if it is a valid ``X-Client-Request-Id`` (1-128 of ``A-Za-z0-9._:-``), else None.

    A None answer means: do not echo it, and log ``client_request_id`` as null.
    """
    if value is None or len(value) > 128 or not CLIENT_REQUEST_ID.fullmatch(value):
        return None
    return value
