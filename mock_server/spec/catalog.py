"""The model list the API serves on ``GET /v1/models``, built from the loaded specs.

Each model the fake serves becomes one item in the documented shape (``id``, ``aliases``,
``type``, ``info {name, developer, ...}``, ``tags``); the ``id`` and ``type`` filters work as
documented (OR within a parameter, AND across them, case-insensitive; comma lists or repeats),
and the answer carries a weak ETag so ``If-None-Match`` can get a 304.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterable, Sequence
from urllib.parse import quote

from ..types import JSON
from .load import SpecSet

__all__ = [
    "IMAGE_TYPE",
    "etag_matches",
    "model_items",
    "models_body",
    "models_etag",
    "models_json",
]

IMAGE_TYPE = "openai/image-generations"
"""The documented ``type`` of image models (and of their docs-json endpoint)."""

_DEVELOPERS = {"blackforestlabs": "Black Forest Labs", "openai": "Open AI"}


def model_items(spec_set: SpecSet) -> list[dict[str, JSON]]:
    """One item per model served on any path, sorted by id."""
    paths: dict[str, set[str]] = {}
    for operation in spec_set:
        paths.setdefault(operation.model, set()).add(operation.path)
    return [_item(model, paths[model]) for model in sorted(paths)]


def _item(model: str, paths: Iterable[str]) -> dict[str, JSON]:
    source, _, alias = model.rpartition("/")
    kind = IMAGE_TYPE if any("/images/" in path for path in paths) else "unknown"
    name = " ".join(word.capitalize() for word in (alias or model).replace("_", "-").split("-"))
    return {
        "id": model,
        "aliases": [alias] if source and alias else [],
        "type": kind,
        "info": {
            "name": name,
            "developer": _DEVELOPERS.get(source, source or "unknown"),
            "url": "",
            "docsJson": (
                f"https://api.aimlapi.com/docs-json?model={quote(model, safe='')}"
                f"&endpoint={quote(kind, safe='')}"
            ),
        },
        "tags": ["playground:image"] if kind == IMAGE_TYPE else [],
    }


def models_body(
    spec_set: SpecSet, ids: Sequence[str] = (), types: Sequence[str] = ()
) -> dict[str, JSON]:
    """``{"object": "list", "data": [...]}``, filtered by ``ids`` (an id or an alias) and
    ``types``; each value may be a comma-separated list. No filter keeps every model."""
    wanted_ids = _values(ids)
    wanted_types = _values(types)
    data = []
    for item in model_items(spec_set):
        aliases: list[str] = item["aliases"]
        names = {str(item["id"]).lower(), *(alias.lower() for alias in aliases)}
        if wanted_ids and not names & wanted_ids:
            continue
        if wanted_types and str(item["type"]).lower() not in wanted_types:
            continue
        data.append(item)
    return {"object": "list", "data": data}


def _values(raw: Sequence[str]) -> set[str]:
    return {part.strip().lower() for value in raw for part in value.split(",") if part.strip()}


def models_etag(content: bytes) -> str:
    """A weak ETag for the body's bytes, shaped like the API's: ``W/"<size hex>-<hash>"``."""
    digest = base64.b64encode(hashlib.sha1(content, usedforsecurity=False).digest()).decode()
    return f'W/"{len(content):x}-{digest[:27]}"'


def models_json(
    spec_set: SpecSet, ids: Sequence[str] = (), types: Sequence[str] = ()
) -> tuple[bytes, str]:
    """:func:`models_body` as compact JSON, with its ETag."""
    content = json.dumps(
        models_body(spec_set, ids, types), ensure_ascii=False, separators=(",", ":")
    ).encode("utf-8")
    return content, models_etag(content)


def etag_matches(if_none_match: str | None, etag: str) -> bool:
    """Whether an ``If-None-Match`` header matches ``etag`` (weak comparison): answer 304."""
    if not if_none_match:
        return False
    wanted = _opaque(etag)
    for candidate in if_none_match.split(","):
        candidate = candidate.strip()
        if candidate == "*" or (candidate and _opaque(candidate) == wanted):
            return True
    return False


def _opaque(tag: str) -> str:
    return tag[2:] if tag[:2] in ("W/", "w/") else tag
