from pathlib import Path

import pytest
from jsonschema import Draft7Validator

from mock_server.errors import SpecError
from mock_server.spec.load import bundled_specs_dir, load_specs
from tests.conftest import BUNDLED_MODELS

SPECS = Path(__file__).parent.parent / "specs"
GENERATION_PATHS = ["/images/generations", "/v1/images/generations"]


def test_bundled_specs_serve_the_flux_2_family_on_both_paths() -> None:
    spec_set = load_specs()
    assert spec_set.models == BUNDLED_MODELS
    assert spec_set.paths == GENERATION_PATHS
    for path in GENERATION_PATHS:
        assert sorted(spec_set.models_for("POST", path)) == BUNDLED_MODELS
        assert spec_set.methods_for(path) == ["POST"]
    assert spec_set.warnings == []


def test_bundled_specs_document_errors_with_the_envelope() -> None:
    for operation in load_specs():
        assert operation.success_status == 200
        for status in (400, 401, 403, 404, 413, 415, 429, 500, 502, 503, 504):
            schema = operation.response_schemas[status]
            assert schema is not None
            assert set(schema["required"]) == {
                "message",
                "path",
                "requestId",
                "statusCode",
                "timestamp",
            }


def test_bundled_specs_require_multiples_of_32() -> None:
    operation = load_specs().models_for("POST", "/v1/images/generations")["blackforestlabs/flux-2"]
    validator = Draft7Validator(operation.request_schema)
    body = {"model": "blackforestlabs/flux-2", "prompt": "x"}
    assert validator.is_valid({**body, "image_size": {"width": 1472, "height": 512}})
    assert not validator.is_valid({**body, "image_size": {"width": 1000, "height": 512}})


def test_bundled_dir_is_the_source_tree_fixtures_in_a_checkout() -> None:
    assert (bundled_specs_dir() / "flux-2.yaml").is_file()


def test_success_documented_as_201() -> None:
    (operation,) = load_specs([SPECS / "created-201.yaml"])
    assert operation.model == "test/created"
    assert operation.success_status == 201
    assert operation.success_schema is not None


@pytest.mark.parametrize(
    ("field", "value", "valid"),
    [
        pytest.param("negative_prompt", None, True, id="typed-nullable-accepts-null"),
        pytest.param("negative_prompt", 3, False, id="typed-nullable-keeps-type"),
        pytest.param("image_size", None, True, id="ref-nullable-accepts-null"),
        pytest.param("image_size", {"width": 64, "height": 64}, True, id="ref-nullable-object"),
        pytest.param("image_size", {"width": 64}, False, id="ref-required-kept"),
        # OpenAPI 3.0.3: nullable adds null to the types, and an enum without null still
        # leaves it out (schemathesis reads requests so too).
        pytest.param("quality", None, False, id="nullable-enum-without-null-refuses-null"),
        pytest.param("quality", "low", True, id="nullable-enum-value"),
        pytest.param("quality", "medium", False, id="nullable-enum-keeps-enum"),
        pytest.param("size_hint", 2, True, id="oneOf-integer"),
        pytest.param("size_hint", "huge", False, id="oneOf-neither"),
        pytest.param("options", {"steps": 51}, False, id="allOf-ref-bound"),
        pytest.param("options", {"steps": 5, "tiled": True}, True, id="allOf-merged"),
        pytest.param("strength", 0, False, id="boolean-exclusiveMinimum"),
        pytest.param("strength", 0.5, True, id="exclusiveMinimum-inside"),
        pytest.param("tags", [], False, id="minItems"),
        pytest.param("tags", ["a", "b", "c", "d"], False, id="maxItems"),
    ],
)
def test_openapi_30_schema_dialect_is_converted(field: str, value: object, valid: bool) -> None:
    (operation,) = load_specs([SPECS / "nullable-refs.json"])
    body = {"model": "test/nullable", "prompt": "p", field: value}
    assert Draft7Validator(operation.request_schema).is_valid(body) is valid


def test_converted_schemas_keep_no_openapi_only_keywords() -> None:
    (operation,) = load_specs([SPECS / "nullable-refs.json"])
    keys = all_keys(operation.request_schema) | all_keys(operation.success_schema)
    assert keys.isdisjoint({"nullable", "$ref", "example", "x-field-note", "x-schema-note"})
    assert {"anyOf", "oneOf", "allOf", "exclusiveMinimum", "format"} <= keys
    Draft7Validator.check_schema(operation.request_schema)


def all_keys(node: object) -> set[str]:
    if isinstance(node, dict):
        return set(node).union(*(all_keys(value) for value in node.values()))
    if isinstance(node, list):
        return set().union(*(all_keys(item) for item in node))
    return set()


def test_one_file_many_paths() -> None:
    spec_set = load_specs([SPECS / "two-paths.yaml"])
    assert list(spec_set.models_for("POST", "/v1/images/generations")) == ["test/two-paths"]
    assert list(spec_set.models_for("POST", "/images/generations")) == ["test/two-paths"]
    assert list(spec_set.models_for("POST", "/v1/images/edits")) == ["test/edit"]


@pytest.mark.parametrize(
    ("order", "winner", "max_length"),
    [
        pytest.param(["dup-a.yaml", "dup-b.yaml"], "dup-a.yaml", 10, id="a-first"),
        pytest.param(["dup-b.yaml", "dup-a.yaml"], "dup-b.yaml", 20, id="b-first"),
    ],
)
def test_model_in_two_files_first_loaded_wins_with_a_warning(
    order: list[str], winner: str, max_length: int
) -> None:
    spec_set = load_specs([SPECS / name for name in order])
    (operation,) = spec_set.models_for("POST", "/v1/images/generations").values()
    assert operation.source.endswith(winner)
    assert operation.request_schema["properties"]["prompt"]["maxLength"] == max_length
    (warning,) = spec_set.warnings
    assert "'test/dup'" in warning and order[0] in warning and order[1] in warning


def test_directory_order_is_sorted_so_the_rule_is_deterministic(tmp_path: Path) -> None:
    for name in ("dup-b.yaml", "dup-a.yaml"):
        (tmp_path / name).write_bytes((SPECS / name).read_bytes())
    (operation,) = load_specs([tmp_path])
    assert operation.source.endswith("dup-a.yaml")


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        pytest.param("not-json.json", "not valid JSON", id="not-json"),
        pytest.param("swagger2.yaml", "Swagger 2.0 is not supported", id="swagger2"),
        pytest.param("openapi31.yaml", "'3.1.0' is not supported", id="openapi31"),
        pytest.param(
            "no-request-schema.yaml", "no operation with a JSON request body", id="no-body"
        ),
        pytest.param("not-a-mapping.yaml", "got list", id="not-a-mapping"),
        pytest.param(
            "unusable-schema.yaml",
            'request body: not a usable schema: "1" is not of type "number" at '
            "properties/seed/minimum",
            id="unusable-schema",
        ),
    ],
)
def test_broken_file_named_explicitly_is_an_error_naming_it(name: str, problem: str) -> None:
    with pytest.raises(SpecError) as caught:
        load_specs([SPECS / "broken" / name])
    assert name in str(caught.value)
    assert problem in str(caught.value)


def test_broken_file_in_a_directory_is_skipped_with_a_warning() -> None:
    spec_set = load_specs([SPECS / "mixed-dir"])
    assert spec_set.models == ["test/good"]
    (warning,) = spec_set.warnings
    assert "bad.yaml" in warning and "'paths' must be a mapping" in warning


def test_directory_with_nothing_loadable_is_an_error() -> None:
    with pytest.raises(SpecError, match=r"no loadable OpenAPI 3\.0 file"):
        load_specs([SPECS / "broken"])


def test_missing_path_is_an_error() -> None:
    with pytest.raises(SpecError, match="no such file or directory"):
        load_specs([SPECS / "nope.yaml"])


@pytest.mark.parametrize(
    ("document", "problem"),
    [
        pytest.param(
            '{"openapi": "3.0.0", "paths": {"/x": {"post": {"requestBody": {"content": '
            '{"application/json": {"schema": {"$ref": "other.json#/A"}}}}}}}}',
            "points outside the document",
            id="external-ref",
        ),
        pytest.param(
            '{"openapi": "3.0.0", "paths": {"/x": {"post": {"requestBody": {"content": '
            '{"application/json": {"schema": {"$ref": "#/components/schemas/Nope"}}}}}}}}',
            "does not resolve",
            id="dangling-ref",
        ),
        pytest.param(
            '{"openapi": "3.0.0", "paths": {"/x": {"post": {"requestBody": {"content": '
            '{"application/json": {"schema": {"$ref": "#/components/schemas/A"}}}}}}},'
            ' "components": {"schemas": {"A": {"properties": '
            '{"a": {"$ref": "#/components/schemas/A"}}}}}}',
            "recursive $ref",
            id="recursive-ref",
        ),
    ],
)
def test_unusable_refs_are_reported(tmp_path: Path, document: str, problem: str) -> None:
    path = tmp_path / "spec.json"
    path.write_text(document)
    with pytest.raises(SpecError, match=problem.replace("$", r"\$")):
        load_specs([path])


FAMILY = SPECS / "family"


@pytest.mark.parametrize(
    "order",
    [["a-older.yaml", "b-newer.yaml"], ["b-newer.yaml", "a-older.yaml"]],
    ids=["older-first", "newer-first"],
)
def test_a_definition_that_documents_its_answer_wins_whatever_the_order(
    order: list[str],
) -> None:
    spec_set = load_specs([FAMILY / "dup-model" / name for name in order])
    (operation,) = spec_set.models_for("POST", "/v1/images/generations").values()
    assert operation.source.endswith("b-newer.yaml")
    assert operation.success_status == 200
    (warning,) = spec_set.warnings
    assert "'test/twice'" in warning and "a-older.yaml" in warning
    assert warning.endswith("serving " + operation.source + "'s definition "
                            "(it documents its success body)")  # fmt: skip
    ((served, others),) = spec_set.conflicts()
    assert served is operation
    assert [other.source for other in others] == [str(FAMILY / "dup-model" / "a-older.yaml")]


def test_definitions_alike_in_documenting_their_answer_go_to_the_first_loaded() -> None:
    spec_set = load_specs([FAMILY / "dup-model"])
    edits = spec_set.models_for("POST", "/v1/images/edits")["test/edit-twice"]
    assert edits.source.endswith("c-edit-strict.yaml")
    assert "(loaded first)" in " ".join(spec_set.warnings)
    assert len(spec_set.conflicts()) == 2


def test_the_family_shapes_load_and_each_path_and_model_is_served() -> None:
    spec_set = load_specs([FAMILY])
    served = {(method, path, model) for (method, path), models in spec_set.operations.items()
              for model in models}  # fmt: skip
    assert served == set(spec_set.definitions)
    assert ("POST", "/images/edits", "test/upload-edit") in served
    assert len(served) == 11
