"""What a contract run found, as data, as a summary for people and as JUnit XML for CI."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from ..engine.reading import MAX_IMAGES
from ..engine.shapes import CREDITS_PER_USD
from ..images.tokens import MAX_PIXELS, MAX_SIDE
from .findings import Finding
from .guard import CostGuard, Redactor
from .settings import KEY_VARIABLE, ContractSettings, is_loopback

if TYPE_CHECKING:
    from .documents import ContractDocument

JUNIT_FILE = "contract-junit.xml"
SUMMARY_FILE = "contract-summary.txt"


@dataclass
class OperationResult:
    """How one operation of one spec file fared (``label``: ``flux-2.yaml POST /v1/...``)."""

    label: str
    requests: int = 0
    phases: set[str] = field(default_factory=set)
    passed: dict[str, int] = field(default_factory=dict)
    failed: dict[str, int] = field(default_factory=dict)
    findings: set[str] = field(default_factory=set)
    errors: list[str] = field(default_factory=list)
    """The first line of each distinct error; ``error_details`` has the whole text."""
    error_details: dict[str, str] = field(default_factory=dict)
    skipped: str | None = None
    budget_spent: bool = False

    def add_error(self, message: str) -> None:
        first = message.splitlines()[0] if message else "error"
        if first not in self.error_details:
            self.errors.append(first)
            self.error_details[first] = message

    @property
    def ok(self) -> bool:
        return not self.findings and not self.errors and (self.requests > 0 or bool(self.skipped))


@dataclass
class ContractReport:
    """The outcome of :func:`~mock_server.contract.run_contract`."""

    settings: ContractSettings
    documents: list[ContractDocument]
    operations: dict[str, OperationResult]
    seed: int
    guard: CostGuard | None = None
    findings: dict[str, Finding] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    elapsed: float = 0.0
    phase_notes: dict[str, str] = field(default_factory=dict)
    """Why a phase did not run (``stateful``: ``not applicable`` without links)."""
    spec_problems: list[str] = field(default_factory=list)
    """Problems of the specs themselves (a model defined by several files), one line each."""
    limited: dict[str, int] = field(default_factory=dict)
    """Schema-valid requests the fake refused for one of its documented limits, by operation."""

    @property
    def passed(self) -> bool:
        """Every check passed: no finding, no error, and every operation was exercised."""
        return not self.findings and not self.errors and all(r.ok for r in self.operations.values())

    @property
    def requests(self) -> int:
        return sum(result.requests for result in self.operations.values())

    def findings_for(self, label: str) -> list[Finding]:
        keys = self.operations[label].findings if label in self.operations else set()
        return [finding for key, finding in self.findings.items() if key in keys]

    def problems_for(self, label: str) -> list[str]:
        """Why ``label`` did not pass, one line each (empty when it passed)."""
        result = self.operations[label]
        lines = [finding.sentence for finding in self.findings_for(label)]
        lines.extend(result.errors)
        if result.requests == 0 and not result.skipped and not lines:
            lines.append("no request was sent to this operation")
        return lines

    def summary(self) -> str:
        """A summary for a terminal: target, what ran, per-operation results, findings, verdict."""
        settings = self.settings
        lines = [f"Contract check of {settings.describe_target()}"]
        for document in self.documents:
            note = document.overlay_note()
            lines.append(f"  spec {document.source}" + (f": {note}" if note else ""))
        lines.append(f"  phases: {self._phases()}")
        lines.append(f"  data: {self._generation()}")
        if self.guard is not None and self.settings.image_request_cap is not None:
            lines.append("  " + self._cost_line())
        if settings.dry_run:
            lines.extend(self._plan())
            return "\n".join(lines)
        lines.append("")
        width = max((len(label) for label in self.operations), default=0)
        for label, result in self.operations.items():
            lines.append(
                f"  {label:<{width}}  {result.requests:>5} requests  {self._verdict(result)}"
            )
        if self.findings:
            lines.append("")
            lines.append(f"Findings ({len(self.findings)}):")
            for number, finding in enumerate(self.findings.values(), start=1):
                lines.append(f"  {number}. {finding.sentence}")
                seen = "response" if finding.count == 1 else "responses"
                where = (
                    "every operation"
                    if finding.operations >= set(self.operations) and len(self.operations) > 1
                    else ", ".join(sorted(finding.operations))
                )
                lines.append(
                    f"     {finding.count} {seen}; checks: {', '.join(sorted(finding.checks))}; "
                    f"in {where}"
                )
                if finding.example:
                    lines.append(f"     e.g. {finding.example}")
        if self.spec_problems:
            lines.append("")
            lines.append(f"Spec problems ({len(self.spec_problems)}; not findings):")
            lines.extend(f"  - {problem}" for problem in self.spec_problems)
        if self.limited:
            total = sum(self.limited.values())
            lines.append("")
            lines.append(
                f"Notes: {total} schema-valid request(s) asked for more than the fake draws "
                f"(its documented limits: sides of 1 to {MAX_SIDE} pixels, at most {MAX_PIXELS:,} "
                f"pixels, {MAX_IMAGES} images) "
                "and got its 400 saying so; not findings:"
            )
            lines.extend(f"  - {label}: {count}" for label, count in sorted(self.limited.items()))
        if self.errors or any(result.errors for result in self.operations.values()):
            lines.append("")
            lines.append("Errors:")
            lines.extend(f"  - {error}" for error in self.errors)
            for result in self.operations.values():
                lines.extend(f"  - {result.label}: {error}" for error in result.errors)
        lines.append("")
        verdict = "PASSED: every check passed" if self.passed else "FAILED"
        count = f"{len(self.findings)} finding(s)" if self.findings else "no findings"
        lines.append(f"{verdict} ({count}; {self.requests} requests in {self.elapsed:.1f} s)")
        return "\n".join(lines)

    def junit_xml(self) -> str:
        """JUnit XML: a suite per spec file, a test case per operation and check."""
        suites = ET.Element("testsuites", name="aimlapi-mock contract", time=f"{self.elapsed:.3f}")
        totals: dict[str, int] = dict.fromkeys(("tests", "failures", "errors", "skipped"), 0)
        for document in self.documents:
            suite = ET.SubElement(suites, "testsuite", name=document.source)
            properties = ET.SubElement(suite, "properties")
            for name, text in (
                ("target", self.settings.describe_target()),
                ("seed", str(self.seed)),
                ("overlay", document.overlay_note() or "none"),
            ):
                ET.SubElement(properties, "property", name=name, value=text)
            counts = dict.fromkeys(totals, 0)
            for label, result in self.operations.items():
                if not label.startswith(document.name + " "):
                    continue
                for _case, kind in self._cases(label, result, suite):
                    counts["tests"] += 1
                    if kind:
                        counts[kind] += 1
            for name, value in counts.items():
                suite.set(name, str(value))
                totals[name] += value
        for name, value in totals.items():
            suites.set(name, str(value))
        ET.indent(suites)
        return ET.tostring(suites, encoding="unicode", xml_declaration=True) + "\n"

    def write(self, directory: str | Path, redact: Redactor | None = None) -> list[Path]:
        """Write the JUnit XML and the summary into ``directory``; returns the files written."""
        redact = redact or Redactor(self.settings.api_key)
        folder = Path(directory)
        folder.mkdir(parents=True, exist_ok=True)
        written = []
        for name, text in ((JUNIT_FILE, self.junit_xml()), (SUMMARY_FILE, self.summary() + "\n")):
            path = folder / name
            path.write_text(redact(text), encoding="utf-8")
            written.append(path)
        return written

    def _cases(
        self, label: str, result: OperationResult, suite: ET.Element
    ) -> list[tuple[ET.Element, str | None]]:
        cases: list[tuple[ET.Element, str | None]] = []
        classname = label.replace(" ", ".", 1)
        if result.skipped:
            case = ET.SubElement(suite, "testcase", classname=classname, name="operation")
            ET.SubElement(case, "skipped", message=result.skipped)
            cases.append((case, "skipped"))
        for check in sorted(set(result.passed) | set(result.failed)):
            case = ET.SubElement(suite, "testcase", classname=classname, name=check)
            findings = [f for f in self.findings_for(label) if check in f.checks]
            if findings:
                failure = ET.SubElement(
                    case, "failure", message="; ".join(f.sentence for f in findings), type="drift"
                )
                failure.text = "\n".join(
                    f"{f.sentence}\n  {f.count} response(s); e.g. {f.example}" for f in findings
                )
            cases.append((case, "failures" if findings else None))
        for error in result.errors or (
            ["no request was sent to this operation"]
            if not result.requests and not result.skipped
            else []
        ):
            case = ET.SubElement(suite, "testcase", classname=classname, name="run")
            detail = result.error_details.get(error, error)
            ET.SubElement(case, "error", message=error[:200]).text = detail
            cases.append((case, "errors"))
        return cases

    def _phases(self) -> str:
        ran = set().union(*(result.phases for result in self.operations.values()))
        shown = []
        for phase in self.settings.active_phases:
            note = self.phase_notes.get(phase)
            shown.append(f"{phase} (skipped: {note})" if note and phase not in ran else phase)
        return ", ".join(shown)

    def _generation(self) -> str:
        settings = self.settings
        shrink = "no shrinking" if settings.guarded else "shrinking"
        rate = settings.effective_rate_limit
        limit = f", at most {rate}" if rate and settings.url else ""
        examples = self._examples()
        return (
            f"positive and negative data, {examples} example{'s' if examples != 1 else ''} per "
            f"operation{limit}, {shrink}; "
            f"seed {self.seed}"
        )

    def _examples(self) -> int:
        if self.guard is not None and self.settings.max_examples is None:
            return max(1, max(self.guard.allowances.values(), default=1))
        return self.settings.examples

    def _cost_line(self) -> str:
        assert self.guard is not None
        used = len(self.guard.sent)
        return (
            f"cost guard: {used} of at most {self.guard.cap} requests that can create images "
            f"(raise with --max-requests)"
        )

    def _plan(self) -> list[str]:
        assert self.settings.dry_run
        url = self.settings.url or ""
        sent = self.guard.sent if self.guard is not None else []
        lines = [
            "",
            "Dry run: nothing was sent. The fake answered in place of "
            f"{url or 'the target'}; a real run would send",
            f"{self.requests} requests, {len(sent)} of them able to create images:",
        ]
        total = 0.0
        redact = Redactor(self.settings.api_key)
        for number, request in enumerate(sent, start=1):
            operation = request.operation.split(" ", 1)[1]
            answer = f"fake answered {request.status}" if request.status else "not answered"
            cost = ""
            if request.status is not None and 200 <= request.status < 300 and request.credits:
                total += request.credits
                cost = f", ~{request.credits:,.0f} credits"
            method, _, path = operation.partition(" ")
            shown = request.body
            if isinstance(shown, dict) and "model" in shown:  # the model first: it says most
                shown = {"model": shown["model"], **shown}
            body = redact.json(shown, 160)
            lines.append(f"  {number}. {method} {url}{path} {body} ({answer}{cost})")
        usd = total / CREDITS_PER_USD
        lines.append(
            f"Estimated cost: ~{total:,.0f} credits (~${usd:.4f} at {CREDITS_PER_USD:,} "
            "credits per US dollar) if the API accepts what the fake accepts; requests it "
            "rejects cost nothing."
        )
        if self.settings.image_request_cap is None:
            lines.append(
                f"{url or 'The target'} is not cost-guarded: a real run would not stop at any "
                "number of image-creating requests (--real or --max-requests N guards it)."
            )
        needs = []
        if (
            self.settings.url
            and not is_loopback(self.settings.url)
            and not self.settings.allow_remote
        ):
            needs.append("--allow-remote")
        if self.settings.guarded and not self.settings.api_key:
            needs.append(f"the key in {KEY_VARIABLE}")
        also = f" ({' and '.join(needs)} needed too)" if needs else ""
        lines.append(
            f"Repeat without --dry-run, with --seed {self.seed}, to send these requests{also}."
        )
        return lines

    def _verdict(self, result: OperationResult) -> str:
        if result.skipped:
            return f"skipped: {result.skipped}"
        if result.ok:
            note = " (budget used up)" if result.budget_spent else ""
            return f"passed{note}"
        parts = []
        if result.findings:
            parts.append(f"{len(result.findings)} finding(s)")
        if result.errors:
            parts.append(f"{len(result.errors)} error(s)")
        return "FAILED: " + (", ".join(parts) or "nothing was sent")
