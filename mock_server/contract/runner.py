"""Running the schemathesis engine over each spec file against the chosen target."""

from __future__ import annotations

import logging
import random
import secrets
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests
import schemathesis
from schemathesis.config import SchemathesisConfig
from schemathesis.engine import Status, events, from_schema
from schemathesis.python import asgi

from ..config import Settings
from ..http.app import create_app
from ..http.server import BackgroundServer
from ..spec.load import SpecSet
from .checks import RunContext, attach, is_limit_answer, refusals
from .documents import (
    ContractDocument,
    conflict_notes,
    load_documents,
    served_definitions,
    superseded,
)
from .findings import Finding, explain
from .guard import BudgetExhausted, CostGuard, Redactor
from .report import ContractReport, OperationResult
from .settings import ContractError, ContractSettings

PLACEHOLDER_KEY = "aimlapi-mock-contract"
"""The bearer token sent to a URL target when ``AIMLAPI_KEY`` is not set (fakes accept any)."""


@dataclass
class _Target:
    """Where the requests of a run go: an ASGI app in-process, or a base URL."""

    app: Any
    url: str | None
    downloads: requests.Session


def run_contract(settings: ContractSettings) -> ContractReport:
    """Check the target against every spec and report findings; raises ContractError or SpecError.

    With ``dry_run`` nothing is sent to the target: a fake on a loopback port answers in its
    place, and ``report.guard.sent`` lists the requests that could create images.
    """
    settings.check()
    check_names(settings.exclude_checks)
    skipped: list[str] = []
    documents = load_documents(settings.specs, skipped)
    served = served_definitions(documents)
    in_process = settings.url is None or settings.dry_run
    key = settings.api_key or (secrets.token_urlsafe(24) if in_process else PLACEHOLDER_KEY)
    redact = Redactor(settings.api_key, key)
    seed = settings.seed if settings.seed is not None else random.randrange(2**31)
    labels = [f"{doc.name} {label}" for doc in documents for label in doc.labels]
    # Operations served from another file's definition are not run, so they get no share.
    checked = [
        f"{doc.name} {label}"
        for doc in documents
        for label in doc.labels
        if label not in superseded(doc, served)
    ]
    cap = settings.image_request_cap
    guard = CostGuard.split(cap, _by_priority(checked)) if cap is not None else None
    if guard is None and settings.dry_run:
        # Not capped, but counted: the dry run estimates the cost of every target.
        guard = CostGuard.split(UNCAPPED, checked)
    report = ContractReport(
        settings=settings,
        documents=documents,
        operations={label: OperationResult(label) for label in labels},
        seed=seed,
        guard=guard,
        spec_problems=[*skipped, *conflict_notes(served)],
    )
    started = time.monotonic()
    with _target(settings, documents, key, in_process) as target:
        for document in documents:
            _run_document(document, settings, target, key, seed, guard, report, redact, served)
    report.elapsed = time.monotonic() - started
    return report


UNCAPPED = 10**9
"""The cap of a guard that only counts (a dry run of a target without a cost guard)."""


def check_names(names: tuple[str, ...]) -> None:
    """Raise :class:`ContractError` naming the valid checks if any of ``names`` is not one."""
    import schemathesis.specs.openapi.checks  # noqa: F401 - registers the built-in checks
    from schemathesis.checks import CHECKS

    valid = sorted(check.__name__ for check in CHECKS.get_all())
    unknown = [name for name in names if name not in valid]
    if unknown:
        raise ContractError(
            f"unknown check {', '.join(map(repr, unknown))} for --exclude-check; "
            f"expected one of {', '.join(valid)}"
        )


def engine_config(
    settings: ContractSettings, key: str, seed: int, url: str | None, examples: int
) -> dict[str, Any]:
    """The schemathesis configuration (as in ``schemathesis.toml``) for one spec file."""
    phases = settings.active_phases
    excluded = {name: {"enabled": False} for name in settings.exclude_checks}
    config: dict[str, Any] = {
        "seed": seed,
        "headers": {"Authorization": f"Bearer {key}"},
        "generation": {
            "mode": "all",
            "max-examples": examples,
            "no-shrink": settings.guarded,
            "database": "none",
        },
        "phases": {
            name: {"enabled": name in phases}
            for name in ("examples", "coverage", "fuzzing", "stateful")
        },
        "checks": {"enabled": True, **excluded},
        "continue-on-failure": True,
        "cache": {"enabled": False},
        "request-timeout": 600 if settings.guarded else 60,
    }
    if settings.guarded:
        # Learning from 4xx answers would make the requests depend on the target's answers, and
        # a dry run (where the fake answers) would no longer show what a real run sends.
        config["phases"]["fuzzing"]["error-feedback"] = {"enabled": False}
        # A retry after a timeout happens inside one call, out of the guard's sight, and could
        # pay for the same generation twice.
        config["request-retries"] = 0
    if url is not None:
        config["base-url"] = url
    if settings.effective_rate_limit and url is not None and not settings.dry_run:
        config["rate-limit"] = settings.effective_rate_limit
    return config


@contextmanager
def _target(
    settings: ContractSettings, documents: list[ContractDocument], key: str, in_process: bool
) -> Iterator[_Target]:
    if not in_process:
        with requests.Session() as downloads:
            yield _Target(None, settings.url, downloads)
        return
    fake = Settings(
        specs=tuple(doc.source for doc in documents),
        auth="keys",
        api_keys=(key,),
        deviations=settings.deviations,
    )
    app: Any = create_app(fake)  # schemathesis types ASGI apps with plain dicts
    if settings.dry_run:
        # Over a loopback socket, like the real run: schemathesis generates a little differently
        # for an in-process app, and the dry run must list the very requests a real run sends.
        # After uvicorn set up its logging: the probes make it warn of invalid requests.
        with (
            BackgroundServer(app) as server,
            _quiet("uvicorn.error"),
            requests.Session() as downloads,
        ):
            yield _Target(None, server.base_url, downloads)
    else:
        with asgi.get_client(app) as downloads:
            yield _Target(app, None, downloads)


def _run_document(
    document: ContractDocument,
    settings: ContractSettings,
    target: _Target,
    key: str,
    seed: int,
    guard: CostGuard | None,
    report: ContractReport,
    redact: Redactor,
    served: SpecSet,
) -> None:
    labels = [f"{document.name} {label}" for label in document.labels]
    examples = settings.examples
    if guard is not None and settings.max_examples is None and guard.cap < UNCAPPED:
        examples = max(1, max(guard.allowances.get(label, 0) for label in labels))
    config = SchemathesisConfig.from_dict(engine_config(settings, key, seed, target.url, examples))
    schema = schemathesis.openapi.from_dict(document.document, config=config)
    if target.app is not None:
        schema.app = target.app
    if settings.guarded:
        # What schemathesis would learn from its probes of a strict server, decided up front: no
        # NUL bytes in headers, no unsafe characters in paths. A dry run then generates the same
        # requests as the real run, whose probes may find either.
        schema.adapt_to_null_byte_in_header_failure()
        schema.adapt_to_path_decoder_rejection()
    skipped: dict[str, str] = {}
    for label, other in superseded(document, served).items():
        skipped[f"{document.name} {label}"] = (
            f"{other.model} is served from {Path(other.source).name}'s definition "
            "(see the spec problems)"
        )
    if guard is not None:
        for label in labels:
            if guard.allowances.get(label, 0) == 0:
                skipped.setdefault(label, "no share of the cap on image-creating requests")
    for label, reason in skipped.items():
        report.operations[label].skipped = reason
    if len(skipped) == len(labels):
        return
    if skipped:
        excluded = schema.exclude(name=[label.split(" ", 1)[1] for label in skipped])
        assert isinstance(excluded, type(schema))
        schema = excluded
    context = RunContext(document, target.downloads, settings.allow_remote, guard, served)
    collector = _Collector(document, context, report, redact)
    with attach(schema, context):
        for event in from_schema(schema).execute():
            collector.collect(event)
    for label, (finding_key, sentence, count) in refusals(context).items():
        collector.add("successful_generation", label, finding_key, sentence)
        report.findings[finding_key].cases.update(f"{label}#{n}" for n in range(count))
    for label, count in context.limited.items():
        report.limited[label] = report.limited.get(label, 0) + count


@dataclass
class _Collector:
    """Turns the engine's events for one spec file into the report's results and findings."""

    document: ContractDocument
    context: RunContext
    report: ContractReport
    redact: Redactor

    def collect(self, event: events.EngineEvent) -> None:
        if isinstance(event, events.ScenarioFinished):
            if event.status == Status.SKIP:
                note = (event.skip_reason or "skipped").rstrip(".").lower()
                self.report.phase_notes.setdefault(event.phase.value, note)
            else:
                self._scenario(event)
        elif isinstance(event, events.PhaseFinished) and event.phase.skip_reason is not None:
            note = event.phase.skip_reason.value.replace("_", " ")
            if event.phase.name.value == "stateful" and note == "not applicable":
                note = "the specs link no operations"
            self.report.phase_notes.setdefault(event.phase.name.value, note)
        elif isinstance(event, events.NonFatalError):
            self._error(f"{self.document.name} {event.label}", event.value)
        elif isinstance(event, events.FatalError):
            self.report.errors.append(self.redact(f"{self.document.name}: {event.exception}"))

    def add(self, check: str, label: str, key: str, sentence: str) -> Finding:
        finding = self.report.findings.get(key)
        if finding is None:
            finding = self.report.findings[key] = Finding(key, self.redact(sentence))
        finding.checks.add(check)
        finding.operations.add(label)
        self.report.operations[label].findings.add(key)
        return finding

    def _error(self, label: str, error: Exception) -> None:
        result = self.report.operations.get(label)
        if _caused_by(error, BudgetExhausted):
            if result is not None:
                result.budget_spent = True
            return
        notes = "".join(f"\n{note}" for note in getattr(error, "__notes__", ()))
        message = self.redact(f"{type(error).__name__}: {error}{notes}".strip())
        if result is None:
            self.report.errors.append(f"{label}: {message}")
        else:
            result.add_error(message)

    def _scenario(self, event: events.ScenarioFinished) -> None:
        recorder = event.recorder
        label = f"{self.document.name} {recorder.label}"
        result = self.report.operations.get(label)
        if result is None:
            return
        result.requests += sum(1 for i in recorder.interactions.values() if i.response is not None)
        result.phases.add(event.phase.value)
        for case_id, nodes in recorder.checks.items():
            case_node = recorder.cases.get(case_id)
            interaction = recorder.interactions.get(case_id)
            case = case_node.value if case_node is not None else None
            response = interaction.response if interaction is not None else None
            for node in nodes:
                if node.failure_info is None or _refused_for_a_limit(node.name, response):
                    # A valid request refused for a documented limit of the fake is a note (the
                    # after_call hook counts it), not a failure of the check.
                    result.passed[node.name] = result.passed.get(node.name, 0) + 1
                else:
                    result.failed[node.name] = result.failed.get(node.name, 0) + 1
                    self._failure(node.name, node.failure_info.failure, case, response, label)

    def _failure(
        self,
        check: str,
        failure: Exception,
        case: schemathesis.Case[Any] | None,
        response: schemathesis.Response | None,
        label: str,
    ) -> None:
        body: Any = None
        media_type = None
        if response is not None:
            media_type = (response.headers.get("content-type") or [""])[0].lower()
            try:
                body = response.json() if "json" in media_type else None
            except ValueError:
                body = None
        problems = self.context.request_problems(case) if case is not None else []
        key, sentence = explain(
            check,
            failure,
            status=response.status_code if response is not None else None,
            media_type=media_type,
            body=body,
            operation=self.context.operation(case) if case is not None else None,
            request_problem=problems[0] if problems else None,
        )
        finding = self.add(check, label, key, sentence)
        finding.cases.add(case.id if case is not None else f"{label}#{len(finding.cases)}")
        if finding.example is None and case is not None:
            status = f" -> {response.status_code}" if response is not None else ""
            body_text = self.redact.json(case.body)
            finding.example = f"{case.method.upper()} {case.formatted_path} {body_text}{status}"


def _refused_for_a_limit(check: str, response: schemathesis.Response | None) -> bool:
    if check != "positive_data_acceptance" or response is None:
        return False
    if "json" not in (response.headers.get("content-type") or [""])[0].lower():
        return False
    try:
        return is_limit_answer(response.json())
    except ValueError:
        return False


@contextmanager
def _quiet(name: str) -> Iterator[None]:
    logger = logging.getLogger(name)
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def _caused_by(error: BaseException | None, kind: type[BaseException]) -> bool:
    seen = 0
    while error is not None and seen < 10:
        if isinstance(error, kind):
            return True
        error = error.__cause__ or error.__context__
        seen += 1
    return False


def _by_priority(labels: list[str]) -> list[str]:
    """Versioned paths first: with a tight cap, ``/v1/...`` is the one clients call."""
    return sorted(labels, key=lambda label: ("/v1/" not in label, label))


__all__ = ["engine_config", "run_contract"]
