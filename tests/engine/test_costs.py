"""What a call costs: credits per megapixel, edits' input images, USD in bodies and headers."""

import dataclasses
import json
from decimal import Decimal

import pytest

from mock_server import SpecSet
from mock_server.engine.synthesis import (
    cost_headers,
    credits_used,
    image_request,
    success_body,
    success_json,
    usd_spent,
)
from mock_server.engine.validation import SchemaValidator
from mock_server.types import (
    DecodedImage,
    ImageSpec,
    InputImage,
    IssuedImage,
    Operation,
    RemoteImage,
)

GENERATIONS = "/v1/images/generations"
EDIT_MODELS = ["flux-2-edit", "flux-2-pro-edit", "flux-2-lora-edit"]
# The docs' edit examples send two public URLs and no size (so the 1024x768 default).
DOC_INPUTS = (
    RemoteImage("https://example.com/t-rex.png"),
    RemoteImage("https://example.com/mug.jpg"),
)


def operation(bundled: SpecSet, name: str) -> Operation:
    return bundled.models_for("POST", GENERATIONS)[f"blackforestlabs/{name}"]


def credits_for(op: Operation, body: dict[str, object], inputs: tuple[InputImage, ...] = ()) -> int:
    request = image_request(op, {"model": op.model, "prompt": "p", **body}, lambda: 1)
    return credits_used(op, dataclasses.replace(request, inputs=inputs))


@pytest.mark.parametrize(
    ("name", "credits"),
    [("flux-2", 25_200), ("flux-2-pro", 63_000), ("flux-2-lora", 44_100), ("flux-2-max", 147_000)],
)
def test_text_to_image_examples_cost_what_the_docs_say(
    bundled: SpecSet, name: str, credits: int
) -> None:
    size = {"image_size": {"width": 1472, "height": 512}}
    assert credits_for(operation(bundled, name), size) == credits


@pytest.mark.parametrize(
    ("name", "credits"),
    [("flux-2-edit", 75_600), ("flux-2-pro-edit", 189_000), ("flux-2-lora-edit", 132_300)],
)
def test_edit_examples_cost_three_times_text_to_image(
    bundled: SpecSet, name: str, credits: int
) -> None:
    assert credits_for(operation(bundled, name), {}, DOC_INPUTS) == credits


def test_input_images_are_charged_by_their_started_megapixels(bundled: SpecSet) -> None:
    op = operation(bundled, "flux-2-edit")
    big = DecodedImage(2048, 2048, "png", "data", b"\0" * 192)  # exactly 4 MP
    just_over = DecodedImage(1025, 1024, "jpeg", "fetched", b"\0" * 192)  # 2 MP started
    tiny = IssuedImage(ImageSpec("m", "p", 64, 64, "png", 1, 0))  # rounds up to 1 MP
    assert credits_for(op, {}, (big,)) == 25_200 * (1 + 4)
    assert credits_for(op, {}, (just_over,)) == 25_200 * (1 + 2)
    assert credits_for(op, {}, (tiny,)) == 25_200 * (1 + 1)
    assert credits_for(op, {}, (big, just_over, tiny)) == 25_200 * (1 + 4 + 2 + 1)


def test_inputs_are_charged_once_however_many_images_come_out(bundled: SpecSet) -> None:
    op = operation(bundled, "flux-2-lora-edit")
    square = {"image_size": "square_hd"}  # 1 MP per output image
    assert credits_for(op, {**square, "num_images": 3}, DOC_INPUTS) == 44_100 * (3 + 2)


def test_generations_without_inputs_cost_as_before(bundled: SpecSet) -> None:
    op = operation(bundled, "flux-2")
    body = {"image_size": {"width": 2048, "height": 2048}, "num_images": 2}
    assert credits_for(op, body) == 25_200 * 4 * 2


def test_flux_2_edit_reports_usd_spent_that_adds_up(bundled: SpecSet) -> None:
    op = operation(bundled, "flux-2-edit")
    body = success_body(op.success_schema, ["http://h/files/a.png"], 75_600)
    assert body["meta"]["usage"] == {"credits_used": 75_600, "usd_spent": 0.0378}
    assert SchemaValidator(op.success_schema or {}).violations(body) == []
    sent = json.loads(success_json(op.success_schema, ["http://h/files/a.png"], 75_600))
    assert sent == body


@pytest.mark.parametrize(
    "name", ["flux-2", "flux-2-max", "flux-2-pro", "flux-2-lora", "flux-2-pro-edit"]
)
def test_models_whose_spec_has_no_usd_spent_report_credits_only(
    bundled: SpecSet, name: str
) -> None:
    op = operation(bundled, name)
    body = json.loads(success_json(op.success_schema, ["http://h/files/a.png"], 63_000))
    assert body["meta"]["usage"] == {"credits_used": 63_000}


def test_usd_spent_follows_the_schema_through_unions() -> None:
    usage = {
        "type": "object",
        "properties": {"credits_used": {"type": "number"}, "usd_spent": {"type": "number"}},
    }
    nullable_meta = {
        "anyOf": [{"type": "object", "properties": {"usage": usage}}, {"type": "null"}]
    }
    schema = {"type": "object", "properties": {"meta": nullable_meta}}
    assert success_body(schema, [], 500_000)["meta"]["usage"] == {
        "credits_used": 500_000,
        "usd_spent": 0.25,
    }
    assert success_body(None, [], 2)["meta"]["usage"] == {"credits_used": 2}


@pytest.mark.parametrize(
    ("credits", "usd"),
    [
        (2_480, 0.00124),
        (3_120_000, 1.56),
        (500_000, 0.25),
        (120_000, 0.06),
        (125_367, 0.0626835),
        (107_341, 0.0536705),
        (0, 0.0),
    ],
)
def test_documented_credit_and_dollar_pairs(credits: int, usd: float) -> None:
    assert usd_spent(credits) == usd


@pytest.mark.parametrize(
    ("credits", "header"),
    [
        (2_480, "0.001240000"),
        (125_367, "0.062683500"),
        (3_120_000, "1.560000000"),
        (1, "0.000000500"),
        (0, "0.000000000"),
        (10**15 + 1, "500000000.000000500"),
    ],
)
def test_cost_headers(credits: int, header: str) -> None:
    headers = cost_headers(credits)
    assert headers == {"x-aimlapi-credits-used": str(credits), "x-aimlapi-usd-spent": header}
    assert Decimal(header) == Decimal(credits) / 2_000_000


def test_cost_headers_match_the_body(bundled: SpecSet) -> None:
    op = operation(bundled, "flux-2-edit")
    credits = credits_for(op, {"image_size": "square"}, DOC_INPUTS)
    body = json.loads(success_json(op.success_schema, ["http://h/files/a.png"], credits))
    headers = cost_headers(credits)
    assert int(headers["x-aimlapi-credits-used"]) == body["meta"]["usage"]["credits_used"]
    assert float(headers["x-aimlapi-usd-spent"]) == body["meta"]["usage"]["usd_spent"]


@pytest.mark.parametrize("credits", [-1, 1.5, True, "10"], ids=["negative", "float", "bool", "str"])
def test_cost_headers_refuse_what_is_not_a_count(credits: object) -> None:
    with pytest.raises(ValueError, match="credits must be a whole number"):
        cost_headers(credits)  # type: ignore[arg-type]
