"""The bundled FLUX.2 family specs: what each model's schema accepts and refuses."""

import pytest

from mock_server import SpecSet
from mock_server.engine.validation import SchemaValidator

GENERATIONS = "/v1/images/generations"
EDITS = ["flux-2-edit", "flux-2-pro-edit", "flux-2-lora-edit"]
ALL = ["flux-2", "flux-2-max", "flux-2-pro", "flux-2-lora", *EDITS]
URL = "https://example.com/t-rex.png"


def problems(bundled: SpecSet, name: str, **fields: object) -> list[tuple[str, str]]:
    model = f"blackforestlabs/{name}"
    operation = bundled.models_for("POST", GENERATIONS)[model]
    body = {"model": model, "prompt": "p", **fields}
    if name in EDITS and "image_urls" not in fields:
        body["image_urls"] = [URL]
    return [
        (v.field, v.message) for v in SchemaValidator(operation.request_schema).violations(body)
    ]


@pytest.mark.parametrize("name", ALL)
def test_every_model_is_served_on_both_paths_with_a_rate(bundled: SpecSet, name: str) -> None:
    for path in (GENERATIONS, "/images/generations"):
        operation = bundled.models_for("POST", path)[f"blackforestlabs/{name}"]
        assert operation.credits_per_megapixel is not None
        assert operation.source.endswith(f"{name}.yaml")


@pytest.mark.parametrize("name", ALL)
def test_explicit_sizes_are_multiples_of_32_from_512_to_2048(bundled: SpecSet, name: str) -> None:
    assert problems(bundled, name, image_size={"width": 1472, "height": 512}) == []
    assert problems(bundled, name, image_size={"width": 1000, "height": 4096}) == [
        ("image_size.height", "Number must be less than or equal to 2048, received 4096"),
        ("image_size.width", "Number must be a multiple of 32, received 1000"),
    ]


@pytest.mark.parametrize("name", EDITS)
def test_edits_require_one_to_three_image_urls(bundled: SpecSet, name: str) -> None:
    model = f"blackforestlabs/{name}"
    operation = bundled.models_for("POST", GENERATIONS)[model]
    validator = SchemaValidator(operation.request_schema)
    missing = validator.violations({"model": model, "prompt": "p"})
    assert [(v.field, v.message) for v in missing] == [("image_urls", "Required")]
    assert problems(bundled, name, image_urls=[URL] * 3) == []
    assert problems(bundled, name, image_urls=[]) == [
        ("image_urls", "Array must contain at least 1 element(s), received []")
    ]
    (too_many,) = problems(bundled, name, image_urls=[URL] * 4)
    assert too_many[0] == "image_urls"
    assert too_many[1].startswith("Array must contain at most 3 element(s)")
    schema = operation.request_schema["properties"]["image_urls"]
    assert schema["items"] == {"type": "string", "format": "uri"}


@pytest.mark.parametrize("name", ["flux-2", "flux-2-pro", "flux-2-lora", "flux-2-max"])
def test_text_to_image_models_do_not_declare_image_urls(bundled: SpecSet, name: str) -> None:
    operation = bundled.models_for("POST", GENERATIONS)[f"blackforestlabs/{name}"]
    assert "image_urls" not in operation.request_schema["properties"]


@pytest.mark.parametrize("name", ["flux-2-lora", "flux-2-lora-edit"])
def test_loras_take_up_to_three_weights_with_a_path_and_a_scale_from_0_to_4(
    bundled: SpecSet, name: str
) -> None:
    good = [{"path": "owner/style", "scale": 0}, {"path": "https://h/x.safetensors", "scale": 4}]
    assert problems(bundled, name, loras=good) == []
    assert problems(bundled, name, loras=[{"path": "a"}] * 3) == []
    (too_many,) = problems(bundled, name, loras=[{"path": "a"}] * 4)
    assert too_many[0] == "loras" and too_many[1].startswith("Array must contain at most 3")
    assert problems(bundled, name, loras=[{"scale": 1}, {"path": "a", "scale": 4.5}]) == [
        ("loras.0.path", "Required"),
        ("loras.1.scale", "Number must be less than or equal to 4, received 4.5"),
    ]
    assert problems(bundled, name, loras=[{"path": "a", "scale": -1}]) == [
        ("loras.0.scale", "Number must be greater than or equal to 0, received -1"),
    ]


@pytest.mark.parametrize("name", ["flux-2-pro", "flux-2-pro-edit"])
def test_pro_safety_tolerance_is_a_digit_from_1_to_6(bundled: SpecSet, name: str) -> None:
    for value in "123456":
        assert problems(bundled, name, safety_tolerance=value) == []
    expected = "'1' | '2' | '3' | '4' | '5' | '6'"
    assert problems(bundled, name, safety_tolerance="7") == [
        ("safety_tolerance", f"Invalid enum value. Expected {expected}, received '7'")
    ]
    assert problems(bundled, name, safety_tolerance=6) != []


@pytest.mark.parametrize(
    ("name", "fields"),
    [
        ("flux-2-pro", {"num_images", "guidance_scale", "loras", "acceleration", "image_urls"}),
        ("flux-2-pro-edit", {"num_images", "guidance_scale", "num_inference_steps", "loras"}),
        ("flux-2-edit", {"loras", "safety_tolerance"}),
        ("flux-2-lora", {"image_urls", "safety_tolerance"}),
    ],
)
def test_each_model_declares_only_its_own_fields(
    bundled: SpecSet, name: str, fields: set[str]
) -> None:
    operation = bundled.models_for("POST", GENERATIONS)[f"blackforestlabs/{name}"]
    assert fields.isdisjoint(operation.request_schema["properties"])


@pytest.mark.parametrize(
    ("name", "usage"),
    [
        ("flux-2-edit", ["credits_used", "usd_spent"]),
        ("flux-2-pro-edit", ["credits_used"]),
        ("flux-2-lora-edit", ["credits_used"]),
        ("flux-2-pro", ["credits_used"]),
        ("flux-2-lora", ["credits_used"]),
    ],
)
def test_usage_fields_follow_the_published_specs(
    bundled: SpecSet, name: str, usage: list[str]
) -> None:
    operation = bundled.models_for("POST", GENERATIONS)[f"blackforestlabs/{name}"]
    assert operation.success_schema is not None
    meta = operation.success_schema["properties"]["meta"]
    assert meta["properties"]["usage"]["required"] == usage


@pytest.mark.parametrize("name", ALL)
def test_openai_style_fields_are_accepted(bundled: SpecSet, name: str) -> None:
    openai_style = {"size": "1024x1024", "n": 2, "response_format": "b64_json", "quality": "hd"}
    assert problems(bundled, name, **openai_style) == []
