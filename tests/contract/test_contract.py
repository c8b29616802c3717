"""The contract suite (mock_server.contract) against each target, with and without drift."""

import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
import requests
import schemathesis
import yaml
from schemathesis import HookContext

from mock_server.contract import ContractError, ContractSettings, is_loopback, run_contract
from mock_server.contract.checks import RunContext, attach, before_call
from mock_server.contract.documents import load_documents
from mock_server.contract.findings import renamed_fields, undocumented_fields
from mock_server.contract.guard import BudgetExhausted, CostGuard, Redactor
from mock_server.contract.runner import engine_config
from mock_server.errors import SpecError
from mock_server.spec.load import bundled_specs_dir
from tests.conftest import SPECS
from tests.served import serve_fake

FLUX2 = str(bundled_specs_dir() / "flux-2.yaml")
SUCCESS_ONLY = str(SPECS / "success-only" / "flux-2-success-only.json")
KEY = "sk-contract-test-key"


def quick(**fields: Any) -> ContractSettings:
    """A quick run: one spec, no coverage phase, a few examples, a fixed seed."""
    defaults: dict[str, Any] = {
        "specs": (FLUX2,),
        "phases": ("examples", "fuzzing"),
        "max_examples": 10,
        "seed": 1,
    }
    return ContractSettings(**{**defaults, **fields})


def sentences(settings: ContractSettings) -> list[str]:
    report = run_contract(settings)
    assert not report.errors
    return [finding.sentence for finding in report.findings.values()]


def test_in_process_fake_is_clean() -> None:
    report = run_contract(quick())
    assert report.passed, report.summary()
    assert set(report.operations) == {
        "flux-2.yaml POST /images/generations",
        "flux-2.yaml POST /v1/images/generations",
    }
    result = report.operations["flux-2.yaml POST /v1/images/generations"]
    assert result.requests >= 10
    for check in (
        "image_urls_serve_requested_images",
        "one_entry_per_image",
        "error_envelope_conformance",
        "documented_response_fields",
        "tracing_and_cost_headers",
        "ignored_auth",
        "negative_data_rejection",
        "positive_data_acceptance",
        "response_schema_conformance",
        "status_code_conformance",
    ):
        assert result.passed.get(check, 0) > 0, check
    assert "PASSED: every check passed" in report.summary()


@pytest.mark.parametrize(
    ("deviation", "finding"),
    [
        ("status-201", "success status 201, spec documents 200"),
        ("tokens-used", "meta.usage.tokens_used present, spec requires credits_used"),
        ("usd-spent", "meta.usage.usd_spent present, spec does not document it"),
        (
            "problem-json",
            "error body is application/problem+json, spec documents the legacy envelope",
        ),
        ("data-null", "data is null in a successful response, 1 image requested"),
        ("wrong-size", "images of the wrong size: "),
        ("no-tracing-headers", "x-inference-id header missing"),
    ],
)
def test_each_deviation_gives_its_finding(deviation: str, finding: str) -> None:
    found = sentences(quick(deviations=(deviation,)))
    assert len(found) == 1, found
    assert found[0].startswith(finding)
    if deviation == "wrong-size":
        width, height = found[0].split(" served for a ")[1].split(" ")[0].split("×")
        assert found[0].startswith(
            f"images of the wrong size: {int(width) // 2}×{int(height) // 2}"
        )


def test_url_target_against_a_running_fake() -> None:
    with serve_fake(auth="keys", api_keys=(KEY,)) as (base_url, recorder):
        report = run_contract(quick(base_url=base_url, api_key=KEY))
    assert report.passed, report.summary()
    assert len(recorder.generations(KEY)) >= 20
    assert any(request.path.startswith("/files/") for request in recorder.received)


def test_url_target_sees_drift_of_a_running_fake() -> None:
    with serve_fake(auth="keys", api_keys=(KEY,), deviations=("tokens-used", "status-201")) as (
        base_url,
        _,
    ):
        found = sentences(quick(base_url=base_url, api_key=KEY))
    assert sorted(found) == [
        "meta.usage.tokens_used present, spec requires credits_used",
        "success status 201, spec documents 200",
    ]


@pytest.mark.parametrize("cap", [None, 2])
def test_real_target_never_exceeds_the_cap(cap: int | None) -> None:
    with serve_fake(auth="keys", api_keys=(KEY,)) as (base_url, recorder):
        settings = ContractSettings(
            base_url=base_url,
            real=True,
            api_key=KEY,
            max_requests=cap,
            rate_limit="100/s",
            seed=5,
        )
        report = run_contract(settings)
    sent = recorder.generations(KEY)
    assert 0 < len(sent) <= (cap or 5)
    assert report.guard is not None and len(report.guard.sent) == len(sent)
    assert report.passed, report.summary()
    assert "coverage" not in set().union(*(r.phases for r in report.operations.values()))
    if cap == 2:
        skipped = [r for r in report.operations.values() if r.skipped]
        # Two requests for all the operations: two /v1/ paths first, then none of the others.
        assert len(skipped) == len(report.operations) - 2
        assert sum("/v1/" not in r.label for r in skipped) == len(report.operations) // 2


def test_dry_run_sends_nothing_and_estimates_the_cost() -> None:
    with serve_fake(auth="keys", api_keys=(KEY,)) as (base_url, recorder):
        report = run_contract(ContractSettings(base_url=base_url, real=True, dry_run=True, seed=5))
    assert recorder.received == []
    summary = report.summary()
    assert "Dry run: nothing was sent." in summary
    assert f"1. POST {base_url}/v1/images/generations" in summary
    assert "Estimated cost: ~" in summary and "credits per US dollar" in summary
    assert "Repeat without --dry-run, with --seed 5, to send these requests" in summary
    assert "(the key in AIMLAPI_KEY needed too)" in summary  # said at once, not on the next run
    assert report.guard is not None and 0 < len(report.guard.sent) <= 5


def test_dry_run_lists_the_very_requests_a_real_run_sends() -> None:
    with serve_fake(auth="keys", api_keys=(KEY,)) as (base_url, recorder):
        common = {"base_url": base_url, "real": True, "seed": 11, "max_requests": 8}
        dry = run_contract(ContractSettings(dry_run=True, **common))
        assert recorder.received == []
        real = run_contract(ContractSettings(api_key=KEY, rate_limit="100/s", **common))
    assert dry.guard is not None and real.guard is not None
    planned = [(r.operation, repr(r.body)) for r in dry.guard.sent]
    sent = [(r.operation, repr(r.body)) for r in real.guard.sent]
    assert planned == sent
    assert len(recorder.generations(KEY)) == len(sent) == 8


def test_success_only_spec_gets_the_documented_errors_as_an_overlay() -> None:
    (document,) = load_documents([SUCCESS_ONLY])
    assert document.overlaid_statuses == (400, 401, 403, 404, 413, 415, 429, 500, 502, 503, 504)
    assert document.overlaid_security
    report = run_contract(quick(specs=(SUCCESS_ONLY,)))
    assert report.passed, report.summary()
    assert "documents only the success response, so errors are checked" in report.summary()
    assert report.operations["flux-2-success-only.json POST /v1/images/generations"].passed[
        "ignored_auth"
    ]


def test_success_only_spec_still_finds_drift_in_the_bundled_fake() -> None:
    # The published spec does not ask for multiples of 32; the bundled fake does.
    with serve_fake(auth="keys", api_keys=(KEY,)) as (base_url, _):
        settings = quick(base_url=base_url, api_key=KEY, specs=(SUCCESS_ONLY,))
        found = sentences(settings)
    rejected = (
        "schema-valid request rejected with 400: image_size.{}: Number must be a multiple of 32"
    )
    assert set(found) <= {rejected.format("width"), rejected.format("height")}
    assert found, "a width or height that is no multiple of 32 should have been rejected"


def test_a_target_that_rejects_the_key_is_not_a_pass() -> None:
    with serve_fake(auth="keys", api_keys=("another-key",)) as (base_url, _):
        found = sentences(quick(base_url=base_url, api_key=KEY))
    assert found == [
        "no schema-valid request succeeded; all were answered 401: This request requires a "
        "valid API key. You can create a new API key on the Billing page: "
        "https://aimlapi.com/app/keys"
    ]


def test_junit_xml_has_a_case_per_operation_and_check() -> None:
    report = run_contract(quick(deviations=("status-201",)))
    suites = ET.fromstring(report.junit_xml())
    assert suites.get("failures") == "2"
    failures = suites.findall(".//testcase/failure")
    assert {f.get("message") for f in failures} == {"success status 201, spec documents 200"}
    names = {case.get("name") for case in suites.iter("testcase")}
    assert {"status_code_conformance", "image_urls_serve_requested_images"} <= names


def test_write_puts_junit_and_summary_in_the_report_directory(tmp_path: Path) -> None:
    report = run_contract(quick())
    written = report.write(tmp_path / "reports")
    assert sorted(path.name for path in written) == ["contract-junit.xml", "contract-summary.txt"]
    assert ET.parse(written[0]).getroot().get("failures") == "0"


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        pytest.param(
            {"base_url": "http://203.0.113.7:8000"}, "is not on this machine", id="remote"
        ),
        pytest.param(
            {"base_url": "https://api.aimlapi.com", "api_key": KEY},
            "Pass --allow-remote",
            id="real-api-remote",
        ),
        pytest.param({"real": True, "allow_remote": True}, "set AIMLAPI_KEY", id="no-key"),
        pytest.param(
            {"real": True, "allow_remote": True, "api_key": KEY, "phases": ("coverage",)},
            "coverage phase",
            id="coverage",
        ),
        pytest.param(
            {"base_url": "http://127.0.0.1:1", "deviations": ("status-201",)},
            "deviations apply to the in-process fake only",
            id="deviation-over-network",
        ),
        pytest.param({"max_requests": 0}, "max_requests must be at least 1", id="cap"),
        pytest.param({"rate_limit": "fast"}, "rate limit 'fast'", id="rate"),
        pytest.param({"base_url": "ftp://127.0.0.1"}, "must start with http", id="scheme"),
        pytest.param({"phases": ("warmup",)}, "unknown phase 'warmup'", id="phase"),
    ],
)
def test_unsafe_or_bad_runs_refuse_to_start(fields: dict[str, object], message: str) -> None:
    with pytest.raises(ContractError, match=message):
        run_contract(ContractSettings(**fields))


def test_the_real_api_is_guarded_whatever_the_flags() -> None:
    settings = ContractSettings(base_url="https://api.aimlapi.com/", allow_remote=True, api_key=KEY)
    settings.check()
    assert settings.guarded and settings.image_request_cap == 5
    assert settings.active_phases == ("examples", "fuzzing")
    assert settings.effective_rate_limit == "1/s"
    assert ContractSettings(real=True).url == "https://api.aimlapi.com"
    assert KEY not in repr(settings)


def test_engine_configuration_per_profile() -> None:
    guarded = engine_config(
        ContractSettings(real=True, api_key=KEY), KEY, 1, "https://api.aimlapi.com", 2
    )
    assert guarded["generation"]["no-shrink"] is True
    assert guarded["generation"]["mode"] == "all"
    assert guarded["phases"]["coverage"] == {"enabled": False}
    assert guarded["rate-limit"] == "1/s"
    assert guarded["request-retries"] == 0
    assert guarded["phases"]["fuzzing"]["error-feedback"] == {"enabled": False}
    full = engine_config(ContractSettings(), KEY, 1, None, 100)
    assert all(phase["enabled"] for phase in full["phases"].values())
    assert full["generation"]["max-examples"] == 100
    assert "rate-limit" not in full and "base-url" not in full


@pytest.mark.parametrize(
    ("url", "loopback"),
    [
        ("http://127.0.0.1:8000", True),
        ("http://127.8.9.10", True),
        ("http://localhost:1", True),
        ("http://[::1]:8000", True),
        ("https://api.aimlapi.com", False),
        ("http://10.0.0.5", False),
        ("http://localhost.example.com", False),
    ],
)
def test_is_loopback(url: str, loopback: bool) -> None:
    assert is_loopback(url) is loopback


def test_cost_guard_fails_closed_for_a_request_it_cannot_attribute() -> None:
    (document,) = load_documents([FLUX2])
    guarded_schema = schemathesis.openapi.from_dict(document.document)
    stray_schema = schemathesis.openapi.from_dict(document.document)
    case = stray_schema["/v1/images/generations"]["POST"].Case(body={"model": "m", "prompt": ""})
    context = RunContext(document, requests.Session(), guard=CostGuard.split(5, ["x"]))
    with attach(guarded_schema, context), pytest.raises(BudgetExhausted, match="not part of"):
        before_call(HookContext(), case, {})
    before_call(HookContext(), case, {})  # no guarded run, nothing to refuse


def test_cost_guard_shares_the_cap_and_refuses_past_it() -> None:
    guard = CostGuard.split(5, ["a", "b", "c"])
    assert guard.allowances == {"a": 2, "b": 2, "c": 1}
    guard.admit("c", {})
    with pytest.raises(Exception, match="c: its share"):
        guard.admit("c", {})
    assert guard.cap == 5 and guard.refused == {"c": 1}


def test_redactor_hides_the_key_everywhere() -> None:
    redact = Redactor(KEY)
    assert redact(f"curl -H 'Authorization: Bearer {KEY}'") == (
        "curl -H 'Authorization: Bearer [redacted]'"
    )
    assert KEY not in redact.json({"prompt": KEY})
    # A key too short to be real is hidden where it is used, not in every word that contains it.
    assert Redactor("k")("Bearer k for blackforestlabs") == "Bearer [redacted] for blackforestlabs"


def test_public_api_of_the_contract_kit() -> None:
    import mock_server.contract

    assert sorted(mock_server.contract.__all__) == [
        "ContractError",
        "ContractReport",
        "ContractSettings",
        "Finding",
        "KEY_VARIABLE",
        "OperationResult",
        "REAL_API_URL",
        "is_loopback",
        "run_contract",
    ]
    for name in mock_server.contract.__all__:
        assert hasattr(mock_server.contract, name)


def test_renamed_and_undocumented_fields() -> None:
    schema = {
        "type": "object",
        "properties": {
            "meta": {
                "type": ["object", "null"],
                "properties": {
                    "usage": {
                        "type": "object",
                        "required": ["credits_used"],
                        "properties": {"credits_used": {"type": "number"}},
                    }
                },
            }
        },
    }
    renamed = {"meta": {"usage": {"tokens_used": 1}}}
    assert list(renamed_fields(renamed, schema)) == [("meta.usage", "credits_used", "tokens_used")]
    extra = {"meta": {"usage": {"credits_used": 1, "usd_spent": 0.1}}, "created": 1}
    assert list(undocumented_fields(extra, schema)) == ["created", "meta.usage.usd_spent"]
    assert list(undocumented_fields({"meta": None}, schema)) == []


FAMILY = SPECS / "family"


def test_a_model_in_several_files_is_checked_against_the_definition_served() -> None:
    report = run_contract(quick(specs=(str(FAMILY / "dup-model"),), max_examples=3))
    assert report.passed, report.summary()
    skipped = {label: result.skipped for label, result in report.operations.items()}
    assert skipped == {
        "a-older.yaml POST /v1/images/generations": (
            "test/twice is served from b-newer.yaml's definition (see the spec problems)"
        ),
        "b-newer.yaml POST /v1/images/generations": None,
        "c-edit-strict.yaml POST /v1/images/edits": None,
        "d-edit-lenient.yaml POST /v1/images/edits": (
            "test/edit-twice is served from c-edit-strict.yaml's definition (see the spec problems)"
        ),
    }
    assert len(report.spec_problems) == 2
    assert report.spec_problems[0] == (
        "'test/twice' on POST /v1/images/generations is defined by b-newer.yaml and by "
        "a-older.yaml (success 200 vs 201, only one documents its success body, different "
        "request bodies); the fake serves, and the suite checks, b-newer.yaml's definition"
    )
    summary = report.summary()
    assert (
        summary.count("'test/twice' on POST") == 1 and "Spec problems (2; not findings)" in summary
    )


def test_a_documented_limit_of_the_fake_is_a_note_not_a_finding(tmp_path: Path) -> None:
    document = yaml.safe_load((FAMILY / "bare-201-unbounded.yaml").read_text())
    body = document["paths"]["/v1/images/generations"]["post"]["requestBody"]
    size = body["content"]["application/json"]["schema"]["properties"]["image_size"]
    size["anyOf"] = [size["anyOf"][0]]  # no preset: only the object form
    size.pop("default")
    size["anyOf"][0]["properties"]["width"] = {"type": "integer", "minimum": 9000}
    body["content"]["application/json"]["schema"]["required"].append("image_size")
    (tmp_path / "too-wide.yaml").write_text(yaml.safe_dump(document))
    report = run_contract(quick(specs=(str(tmp_path / "too-wide.yaml"),), max_examples=3))
    assert report.passed, report.summary()
    assert report.limited["too-wide.yaml POST /v1/images/generations"] > 0
    assert "asked for more than the fake draws" in report.summary()


def test_files_a_directory_holds_that_cannot_be_used_are_skipped_with_a_note() -> None:
    report = run_contract(quick(specs=(str(SPECS / "mixed-dir"),), max_examples=2))
    assert report.passed, report.summary()
    (problem,) = report.spec_problems
    assert problem.startswith("skipped ") and "bad.yaml: 'paths' must be a mapping" in problem
    with pytest.raises(SpecError, match=r"bad\.yaml"):
        load_documents([str(SPECS / "mixed-dir")])


def test_every_test_spec_passes_the_contract_suite() -> None:
    """The fake is its own first customer: every shape in tests/specs (the family's shapes in
    tests/specs/family, one model in several files, unusable files in directories) passes every
    phase with no finding, and every operation not superseded by another file's definition got
    requests and at least one success."""
    report = run_contract(ContractSettings(specs=(str(SPECS),), max_examples=3, seed=14))
    assert report.passed, report.summary()
    assert not report.findings and not report.errors
    for label, result in report.operations.items():
        assert result.skipped or result.requests > 0, label
        if result.skipped:
            assert "definition (see the spec problems)" in result.skipped, label
    assert sum(problem.startswith("skipped ") for problem in report.spec_problems) == 7
    assert sum(" is defined by " in problem for problem in report.spec_problems) == 4


def test_the_cost_guard_shares_the_cap_only_among_operations_it_runs() -> None:
    report = run_contract(
        quick(specs=(str(FAMILY / "dup-model"),), dry_run=True, real=True, max_requests=4)
    )
    assert report.guard is not None
    assert set(report.guard.allowances) == {
        "b-newer.yaml POST /v1/images/generations",
        "c-edit-strict.yaml POST /v1/images/edits",
    }
    assert report.guard.cap == 4


@pytest.mark.parametrize(
    ("headers", "body", "sentence"),
    [
        ({}, {}, "x-inference-id header missing"),
        (
            {"x-inference-id": "V1StGXR8Z5jdHi6BmyT8k"},
            {},
            "x-aimlapi-credits-used header missing on a JSON answer",
        ),
        (
            {"x-inference-id": "i", "x-aimlapi-credits-used": "2480", "x-aimlapi-usd-spent": "1"},
            {},
            "x-aimlapi-usd-spent 1 is not x-aimlapi-credits-used 2480 / 2,000,000",
        ),
        (
            {"x-inference-id": "i", "x-aimlapi-credits-used": "a", "x-aimlapi-usd-spent": "0"},
            {},
            "x-aimlapi-credits-used 'a' is not a whole number",
        ),
        (
            {
                "x-inference-id": "i",
                "x-aimlapi-credits-used": "2480",
                "x-aimlapi-usd-spent": "0.001240000",
            },
            {"meta": {"usage": {"credits_used": 25200}}},
            "x-aimlapi-credits-used 2480, meta.usage.credits_used 25200",
        ),
    ],
    ids=["no-inference-id", "no-cost", "usd-disagrees", "credits-not-a-number", "body-disagrees"],
)
def test_each_header_drift_has_its_sentence(
    headers: dict[str, str], body: object, sentence: str
) -> None:
    from mock_server.contract.checks import header_drift

    drift = header_drift(headers, "application/json", body, success=True)
    assert drift is not None and drift.sentence == sentence
    consistent = {
        "x-inference-id": "i",
        "x-aimlapi-credits-used": "25200",
        "x-aimlapi-usd-spent": "0.012600000",
    }
    assert header_drift(consistent, "application/json", {"meta": {"usage": {}}}, True) is None
    assert header_drift({"x-inference-id": "i"}, "image/png", None, True) is None


def _failure(kind: str, **attributes: object) -> Exception:
    """A stand-in for a schemathesis failure of class ``kind``, as explain() reads it."""
    failure = type(kind, (Exception,), {})()
    for name, value in attributes.items():
        setattr(failure, name, value)
    return failure


@pytest.mark.parametrize(
    ("failure", "status", "media_type", "body", "sentence"),
    [
        (_failure("UndefinedStatusCode", defined_status_codes=["200", "400"]), 201,
         "application/json", {}, "success status 201, spec documents 200"),
        (_failure("UndefinedStatusCode", defined_status_codes=["200", "400"]), 418,
         "application/json", {}, "status 418, which the spec does not document (it documents "
         "200, 400)"),
        (_failure("UndefinedContentType", defined_content_types=["application/json"]), 200,
         "text/html", "x", "success body is text/html, spec documents application/json"),
        (_failure("ServerError"), 502, "application/json", {}, "server error 502"),
        (_failure("RejectedPositiveData"), 400, "application/json",
         {"message": "Body validation error\nprompt: Required"},
         "schema-valid request rejected with 400"),
        (_failure("AcceptedNegativeData"), 200, "application/json", {},
         "schema-invalid request accepted with 200 (seed: Expected number)"),
        (_failure("IgnoredAuth", title="API accepts requests without authentication"), 200,
         "application/json", {}, "request without Authorization answered 200, spec requires a "
         "bearer key (401)"),
        (_failure("IgnoredAuth", title="API accepts invalid authentication"), 200,
         "application/json", {}, "request with an invalid key answered 200, expected 401"),
        (_failure("UnsupportedMethodResponse", method="PUT",
                  failure_reason="missing_allow_header"), 405, "application/json", {},
         "405 for an undocumented method (PUT) without an Allow header"),
        (_failure("UnsupportedMethodResponse", method="PUT", failure_reason="wrong_status"), 200,
         "application/json", {}, "undocumented method PUT answered 200, expected 405"),
        (_failure("MissingHeaders", missing_headers=["x-request-id"]), 200, "application/json",
         {}, "documented response header(s) x-request-id missing"),
        (_failure("SomethingNew", title="a check we do not know"), 200, "application/json", {},
         "some_check: a check we do not know"),
    ],
    ids=["undocumented-success", "undocumented-status", "content-type", "server-error",
         "rejected-valid", "accepted-invalid", "no-auth", "invalid-auth", "405-no-allow",
         "method-not-405", "missing-header", "unknown-kind"],
)  # fmt: skip
def test_each_failure_kind_is_explained_in_plain_words(
    failure: Exception, status: int, media_type: str, body: object, sentence: str
) -> None:
    from mock_server import load_specs
    from mock_server.contract.findings import explain

    operation = load_specs().models_for("POST", "/v1/images/generations")["blackforestlabs/flux-2"]
    _, said = explain(
        "some_check",
        failure,
        status=status,
        media_type=media_type,
        body=body,
        operation=operation,
        request_problem="seed: Expected number",
    )
    assert said.startswith(sentence), said
