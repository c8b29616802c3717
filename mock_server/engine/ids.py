"""Request ids: random version-4 UUIDs in their usual text form, made cheaply.

``str(uuid.uuid4())`` reads the OS's random source and builds a UUID object, several microseconds
on every request; an id only has to be unique, not unguessable, so Python's own generator will do
(the ``random`` module reseeds itself in forked worker processes).
"""

from __future__ import annotations

from random import getrandbits

_VERSION_AND_VARIANT_BITS = (0xF << 76) | (0x3 << 62)
_VERSION_4 = (0x4 << 76) | (0x2 << 62)


def new_request_id() -> str:
    """A random UUID, version 4, such as ``6f0c2a4e-8d1b-4c55-9a7e-2b6f1d9e4c10``."""
    value = getrandbits(128) & ~_VERSION_AND_VARIANT_BITS | _VERSION_4
    text = f"{value:032x}"
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"
