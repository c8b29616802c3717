"""``aimlapi-mock specs diff``: what changed between two spec files, in sentences."""

import copy
from typing import Any

import pytest
import yaml

from mock_server.cli import main
from mock_server.spec.diff import diff_documents, diff_files, render
from mock_server.spec.load import bundled_specs_dir
from tests.conftest import SPECS

OLD = SPECS / "diff" / "old.yaml"
NEW = SPECS / "diff" / "new.yaml"
BUNDLED_FLUX2 = bundled_specs_dir() / "flux-2.yaml"
SUCCESS_ONLY = SPECS / "success-only" / "flux-2-success-only.json"


def lines(old: Any, new: Any) -> list[str]:
    return [f"{change.where} | {change}" for change in diff_documents(old, new)]


def test_every_kind_of_change_is_named() -> None:
    found = [f"{change.where} | {change}" for change in diff_files(OLD, NEW)]
    body = "POST /v1/images/generations request body"
    assert found == [
        "POST /v1/images/old-path | operation removed",
        "POST /images/generations | operation added",
        f"{body} | style: field removed",
        f"{body} | seed: optional field added (integer)",
        f"{body} | prompt: maxLength 1000 -> 4000",
        f"{body} | output_format: now required",
        f"{body} | output_format: default 'jpeg' -> 'png'",
        f"{body} | output_format: enum: values ['webp'] added",
        f"{body} | num_images: type 'integer' -> 'number'",
        "POST /v1/images/generations responses | success status: 201 -> 200",
        "POST /v1/images/generations responses | status codes: no longer documented: 400",
        "POST /v1/images/generations response 201 -> 200 | data: nullable true added",
        "POST /v1/images/generations response 201 -> 200 | meta.usage.tokens_used: "
        "renamed to credits_used",
    ]


def test_descriptions_and_examples_are_not_changes() -> None:
    old = yaml.safe_load(OLD.read_text())
    new = copy.deepcopy(old)
    schema = new["components"]["schemas"]["Request"]
    schema["properties"]["prompt"]["description"] = "Reworded."
    schema["properties"]["prompt"]["example"] = "A cat"
    schema["x-internal"] = True
    assert lines(old, new) == []


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        pytest.param(
            lambda s: s["properties"]["num_images"].update(minimum=2),
            "num_images: minimum 1 -> 2",
            id="bound",
        ),
        pytest.param(
            lambda s: s["properties"]["output_format"].update(enum=["jpeg"]),
            "output_format: enum: values ['png'] removed",
            id="enum-removed",
        ),
        pytest.param(
            lambda s: s["required"].remove("prompt"),
            "prompt: no longer required",
            id="required",
        ),
        pytest.param(
            lambda s: s["properties"]["output_format"].pop("default"),
            "output_format: default 'jpeg' removed",
            id="default-removed",
        ),
        pytest.param(
            lambda s: (
                s["properties"].update(extra={"type": "boolean"}) or s["required"].append("extra")
            ),
            "extra: required field added (boolean)",
            id="required-field-added",
        ),
    ],
)
def test_single_edits(edit: Any, expected: str) -> None:
    old = yaml.safe_load(OLD.read_text())
    new = copy.deepcopy(old)
    edit(new["components"]["schemas"]["Request"])
    assert lines(old, new) == [f"POST /v1/images/generations request body | {expected}"]


def test_bundled_spec_against_a_success_only_spec() -> None:
    changes = [str(change) for change in diff_files(BUNDLED_FLUX2, SUCCESS_ONLY)]
    assert "security: bearer -> none" in changes
    assert "image_size.anyOf[0].width: multipleOf 32 removed" in changes
    assert (
        "status codes: no longer documented: 400, 401, 403, 404, 413, 415, 429, 500, 502, 503, "
        "504" in changes
    )


def test_render_groups_changes_by_operation() -> None:
    text = render(diff_files(OLD, NEW), "old.yaml", "new.yaml")
    assert text.startswith("13 difference(s) from old.yaml to new.yaml:\n")
    assert (
        "\nPOST /v1/images/generations response 201 -> 200\n  - data: nullable true added" in text
    )
    assert render([], "a", "b") == "No differences between a and b."


def test_cli_exit_status(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["specs", "diff", str(OLD), str(OLD)]) == 0
    assert "No differences" in capsys.readouterr().out
    assert main(["specs", "diff", str(OLD), str(NEW)]) == 1
    assert "renamed to credits_used" in capsys.readouterr().out
    assert main(["specs", "diff", str(OLD), str(SPECS / "missing.yaml")]) == 2
    assert "cannot be read" in capsys.readouterr().err
    assert main(["specs", "diff", str(OLD), str(SPECS / "broken" / "swagger2.yaml")]) == 2
    assert "Swagger 2.0 is not supported" in capsys.readouterr().err
