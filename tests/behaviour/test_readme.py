"""Every example in the README works: Python runs, commands parse, JSON and YAML load.

Python blocks run in this process against a fake on a free port (``http://127.0.0.1:8000`` in a
block is pointed at it), with ``aimlapi_mock`` bound to that fake as the pytest fixture would be.
A block that cannot run here says so in an HTML comment on the line before it:
``<!-- readme-test: skip (why) -->``, or ``<!-- readme-test: run by tests/FILE.py::TEST -->``
for one another test runs (this test checks that the named test exists).

Shell commands (in ``sh`` blocks and in the ``run:`` steps of YAML ones) are checked as far as
they can be without side effects: ``aimlapi-mock`` command lines parse with the CLI's own parser
(and ``serve``'s options make valid settings), ``curl`` calls go to routes the fake serves and
send valid JSON.
"""

from __future__ import annotations

import contextlib
import io
import json
import re
import shlex
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from mock_server import MockServer, Settings
from mock_server.cli import build_parser, settings_from_args

ROOT = Path(__file__).parents[2]
README = ROOT / "README.md"
DEFAULT_BASE = "http://127.0.0.1:8000"
MARK = re.compile(r"<!--\s*readme-test:\s*(skip|run by)\s*(.*?)\s*-->")
SHELL_OPERATORS = {"&&", "||", ";", "|", "&", ";;"}
REDIRECTIONS = {">", ">>", "<", ">&", "&>", "<&"}
API_ROUTES = ("/v1/images/generations", "/images/generations", "/__mock/")


@dataclass(frozen=True)
class Block:
    language: str
    code: str
    line: int
    mark: tuple[str, str] | None

    @property
    def id(self) -> str:
        return f"{self.language}-line-{self.line}"


def readme_blocks(text: str) -> list[Block]:
    blocks: list[Block] = []
    lines = text.splitlines()
    index = 0
    while index < len(lines):
        opening = re.fullmatch(r"```(\w*)\s*", lines[index])
        if opening is None:
            index += 1
            continue
        previous = next((line for line in reversed(lines[:index]) if line.strip()), "")
        found = MARK.search(previous)
        end = lines.index("```", index + 1)
        blocks.append(
            Block(
                opening.group(1),
                "\n".join(lines[index + 1 : end]) + "\n",
                index + 1,
                (found.group(1), found.group(2)) if found else None,
            )
        )
        index = end + 1
    return blocks


BLOCKS = readme_blocks(README.read_text(encoding="utf-8"))


def of(*languages: str) -> list[Block]:
    return [block for block in BLOCKS if block.language in languages]


@pytest.fixture(scope="module")
def fake() -> Iterator[MockServer]:
    with MockServer() as server:
        yield server


def test_the_readme_has_examples_of_each_kind() -> None:
    assert len(of("python")) >= 5
    assert len(of("sh")) >= 10
    assert of("json") and of("yaml")


@pytest.mark.parametrize("block", of("python"), ids=lambda block: block.id)
def test_python_examples_run(block: Block, fake: MockServer) -> None:
    if block.mark is not None:
        kind, reason = block.mark
        if kind == "run by":
            path, _, name = reason.partition("::")
            assert f"def {name}(" in (ROOT / path).read_text(), f"no test {reason!r}"
            return
        pytest.fail(f"skipped README block at line {block.line}: {reason}")  # pragma: no cover
    fake.reset()
    code = block.code.replace(DEFAULT_BASE, fake.base_url)
    printed = io.StringIO()
    namespace = {"__name__": "__main__", "aimlapi_mock": fake}
    try:
        with contextlib.redirect_stdout(printed):
            exec(compile(code, f"README.md:{block.line}", "exec"), namespace)
    except ModuleNotFoundError as missing:
        pytest.fail(
            f"the README block at line {block.line} needs {missing.name!r}: add it to the test "
            "extra, or mark the block <!-- readme-test: skip (why) -->"
        )
    if "/images/generations" in code:
        assert fake.app.journal.entries, "the example sent nothing to the fake"


def test_every_skip_mark_is_rare() -> None:
    skipped = [block for block in BLOCKS if block.mark and block.mark[0] == "skip"]
    assert len(skipped) <= 2, [block.id for block in skipped]


@pytest.mark.parametrize("block", of("json"), ids=lambda block: block.id)
def test_json_examples_load(block: Block) -> None:
    json.loads(block.code)


def commands(script: str) -> Iterator[list[str]]:
    """Each simple command of a shell script, as words, without redirections."""
    script = script.replace("\\\n", " ")
    for line in script.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        lexer = shlex.shlex(line, posix=True, punctuation_chars=";&|<>")
        lexer.whitespace_split = True
        lexer.commenters = "#"
        words: list[str] = []
        tokens = list(lexer)
        skip = False
        for position, token in enumerate(tokens):
            if skip:
                skip = False
                continue
            if token in SHELL_OPERATORS or token in ("do", "then", "until", "while", "if"):
                if words:
                    yield words
                words = []
            elif token in REDIRECTIONS:
                skip = True
            elif (
                token.isdigit()
                and position + 1 < len(tokens)
                and tokens[position + 1] in (REDIRECTIONS)
            ):
                continue
            else:
                words.append(token)
        if words:
            yield words


def check_command(words: list[str]) -> bool:
    """Check one command; True if it was one this test knows (aimlapi-mock, curl)."""
    program = Path(words[0]).name
    if program == "timeout":
        return check_command(words[2:])
    if program == "sh" and words[1:2] == ["-c"]:
        return any([check_command(inner) for inner in commands(words[2])])
    if program == "pytest" and words[1:2] == ["contracts/"]:
        from mock_server.contract.settings import CONTRACT_OPTIONS

        options = {"--contract-target"} | {
            "--contract-" + option.flag.removeprefix("--")
            for option in CONTRACT_OPTIONS
            if option.in_pytest
        }
        for word in words[2:]:
            if word.startswith("--"):
                assert word in options, f"pytest contracts/ has no option {word}"
        return True
    if program == "aimlapi-mock":
        try:
            args = build_parser().parse_args(words[1:])
        except SystemExit as error:
            raise AssertionError(f"{shlex.join(words)!r} does not parse") from error
        if args.command == "serve":
            settings_from_args(args, Settings())
        return True
    if program == "curl":
        urls = [word for word in words if word.startswith(("http://", "https://", "$AIMLAPI"))]
        assert urls, f"curl without a URL: {words}"
        for url in urls:
            path = re.sub(r"^(https?://[^/]+|\$\w+)", "", url)
            assert path.startswith(API_ROUTES), f"curl to a route the fake does not serve: {url}"
        for flag in ("-d", "--data", "--data-raw"):
            if flag in words:
                json.loads(words[words.index(flag) + 1])
        return True
    return False


@pytest.mark.parametrize("block", of("sh"), ids=lambda block: block.id)
def test_shell_examples_parse(block: Block) -> None:
    assert any(check_command(words) for words in commands(block.code)) or block.code.startswith(
        ("python3 -m venv", "docker ")
    ), f"nothing to check in {block.code!r}"


@pytest.mark.parametrize("block", of("yaml"), ids=lambda block: block.id)
def test_the_ci_job_is_complete(block: Block) -> None:
    workflow = yaml.safe_load(block.code)
    (job,) = workflow["jobs"].values()
    scripts = [step["run"] for step in job["steps"] if "run" in step]
    checked = [words for script in scripts for words in commands(script) if check_command(words)]
    programs = [" ".join(words[:2]) for words in checked]
    assert "aimlapi-mock serve" in programs
    assert "aimlapi-mock contract" in programs
    assert any("/__mock/health" in " ".join(words) for words in checked)
    assert any("--junitxml=reports/junit.xml" in script for script in scripts)
    uploads = [step for step in job["steps"] if step.get("uses", "").startswith("actions/upload")]
    assert uploads and uploads[0]["with"]["path"] == "reports/"
    assert uploads[0]["if"] == "always()"


def test_the_dockerfile_health_check_works(fake: MockServer) -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    (check,) = re.findall(r"^\s+CMD (\[.*\])$", dockerfile, re.MULTILINE)
    command = json.loads(check)
    assert command[0] == "python"
    port = fake.base_url.rsplit(":", 1)[1]
    healthy = subprocess.run(
        [sys.executable, *command[1:]], env={"AIMLAPI_MOCK_PORT": port}, capture_output=True
    )
    assert healthy.returncode == 0, healthy.stderr
    with contextlib.closing(__import__("socket").socket()) as closed:
        closed.bind(("127.0.0.1", 0))
        unused = str(closed.getsockname()[1])
    unhealthy = subprocess.run(
        [sys.executable, *command[1:]], env={"AIMLAPI_MOCK_PORT": unused}, capture_output=True
    )
    assert unhealthy.returncode != 0
    # What the image runs parses, with the settings its environment gives.
    entrypoint = json.loads(re.search(r"^ENTRYPOINT (\[.*\])$", dockerfile, re.M).group(1))  # type: ignore[union-attr]
    cmd = json.loads(re.search(r"^CMD (\[.*\])$", dockerfile, re.M).group(1))  # type: ignore[union-attr]
    assert check_command(entrypoint + cmd)
    environment = dict(re.findall(r"(AIMLAPI_MOCK_\w+)=(\S+)", dockerfile))
    assert Settings.from_env(environment).host == "0.0.0.0"
    assert "USER aimlapi" in dockerfile
