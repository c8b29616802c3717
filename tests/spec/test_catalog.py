"""GET /v1/models: items built from the loaded specs, filters and the ETag."""

import json

import pytest

from mock_server import SpecSet
from mock_server.spec.catalog import etag_matches, models_body, models_etag, models_json
from tests.conftest import BUNDLED_MODELS


def ids(body: dict[str, object]) -> list[str]:
    return [item["id"] for item in body["data"]]  # type: ignore[attr-defined, index]


def test_every_served_model_is_listed_once_in_the_documented_shape(bundled: SpecSet) -> None:
    body = models_body(bundled)
    assert body["object"] == "list"
    assert ids(body) == BUNDLED_MODELS
    item = body["data"][0]  # type: ignore[index]
    assert set(item) == {"id", "aliases", "type", "info", "tags"}
    assert item == {
        "id": "blackforestlabs/flux-2",
        "aliases": ["flux-2"],
        "type": "openai/image-generations",
        "info": {
            "name": "Flux 2",
            "developer": "Black Forest Labs",
            "url": "",
            "docsJson": "https://api.aimlapi.com/docs-json?model=blackforestlabs%2Fflux-2"
            "&endpoint=openai%2Fimage-generations",
        },
        "tags": ["playground:image"],
    }


@pytest.mark.parametrize(
    ("id_filter", "type_filter", "expected"),
    [
        (["flux-2-pro"], [], ["blackforestlabs/flux-2-pro"]),
        (["BlackForestLabs/FLUX-2"], [], ["blackforestlabs/flux-2"]),
        (
            ["flux-2-max,flux-2-edit"],
            [],
            ["blackforestlabs/flux-2-edit", "blackforestlabs/flux-2-max"],
        ),
        (
            ["flux-2-max", "flux-2-edit"],
            [],
            ["blackforestlabs/flux-2-edit", "blackforestlabs/flux-2-max"],
        ),
        ([], ["openai/image-generations"], BUNDLED_MODELS),
        (["flux-2"], ["OPENAI/IMAGE-GENERATIONS"], ["blackforestlabs/flux-2"]),
        (["flux-2"], ["openai/chat-completion"], []),
        (["gpt-4o"], [], []),
    ],
    ids=[
        "alias",
        "id-any-case",
        "comma-list",
        "repeated",
        "type",
        "id-and-type",
        "type-excludes",
        "unknown-id",
    ],
)
def test_filters(
    bundled: SpecSet, id_filter: list[str], type_filter: list[str], expected: list[str]
) -> None:
    assert ids(models_body(bundled, id_filter, type_filter)) == expected


def test_the_etag_is_weak_and_follows_the_content(bundled: SpecSet) -> None:
    content, etag = models_json(bundled)
    assert json.loads(content) == models_body(bundled)
    assert etag.startswith('W/"') and etag.endswith('"')
    size, _, digest = etag[3:-1].partition("-")
    assert int(size, 16) == len(content) and len(digest) == 27
    assert models_json(bundled) == (content, etag)
    assert models_json(bundled, ["flux-2"])[1] != etag
    assert models_etag(b"a") != models_etag(b"b")


@pytest.mark.parametrize(
    ("header", "matches"),
    [
        (None, False),
        ("", False),
        ('W/"1-abc"', True),
        ('"1-abc"', True),
        ('W/"2-xyz", W/"1-abc"', True),
        ("*", True),
        ('W/"1-abd"', False),
    ],
    ids=["absent", "empty", "same", "strong-form", "in-a-list", "star", "other"],
)
def test_if_none_match(header: str | None, matches: bool) -> None:
    assert etag_matches(header, 'W/"1-abc"') is matches
