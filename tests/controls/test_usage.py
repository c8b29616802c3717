"""GET /v2/logs: rows newest first, the documented filters, pages and 400s."""

from datetime import UTC, datetime, timedelta

import pytest

from mock_server.controls.usage import LogEntry, UsageLog, logs_page
from mock_server.errors import ApiError

NOW = datetime(2026, 8, 20, 12, 0, tzinfo=UTC)
DAY = {"period": ["24h"]}


def entry(minutes_ago: float, model: str = "blackforestlabs/flux-2", **fields: object) -> LogEntry:
    created = (NOW - timedelta(minutes=minutes_ago)).timestamp()
    values: dict[str, object] = {"status": "succeeded", "credits": 25_200, "inference_id": "i"}
    values.update(fields)
    return LogEntry(created, model, **values)  # type: ignore[arg-type]


def page(entries: list[LogEntry], **query: list[str]) -> dict[str, object]:
    return logs_page(entries, query, NOW)


def test_rows_have_the_documented_shape() -> None:
    row = LogEntry(
        NOW.timestamp(),
        "blackforestlabs/flux-2-edit",
        "succeeded",
        75_600,
        "V1StGXR8Z5jdHi6BmyT8k",
        "6f0c2a4e-8d1b-4c55-9a7e-2b6f1d9e4c10",
        "order-8f21c4",
    ).as_json()
    assert row == {
        "created": "2026-08-20T12:00:00.000Z",
        "status": "succeeded",
        "origin": "api",
        "model": "blackforestlabs/flux-2-edit",
        "cost": {"usd": 0.0378, "credits": 75_600},
        "tokens": {"input": 0, "output": 0, "total": 0},
        "request_id": "6f0c2a4e-8d1b-4c55-9a7e-2b6f1d9e4c10",
        "inference_id": "V1StGXR8Z5jdHi6BmyT8k",
        "client_request_id": "order-8f21c4",
    }


def test_failed_requests_are_listed_at_zero_cost() -> None:
    row = entry(1, status="failed", credits=25_200).as_json()
    assert row["status"] == "failed" and row["cost"] == {"usd": 0.0, "credits": 0}


def test_the_log_lists_newest_first_and_stays_bounded() -> None:
    log = UsageLog(max_entries=3)
    for n in range(5):
        log.record(entry(10 - n, inference_id=f"id{n}"))
    assert [e.inference_id for e in log.newest_first()] == ["id4", "id3", "id2"]
    body = page(log.newest_first(), **DAY)
    assert [row["inference_id"] for row in body["data"]] == ["id4", "id3", "id2"]  # type: ignore[index]
    log.clear()
    assert len(log) == 0


def test_pages_and_their_pagination() -> None:
    entries = [entry(n, inference_id=f"id{n}") for n in range(7)]
    body = page(entries, limit=["3"], offset=["3"], **DAY)
    assert [row["inference_id"] for row in body["data"]] == ["id3", "id4", "id5"]  # type: ignore[index]
    assert body["pagination"] == {"limit": 3, "offset": 3, "total": 7, "has_more": True}
    last = page(entries, limit=["3"], offset=["6"], **DAY)
    assert last["pagination"] == {"limit": 3, "offset": 6, "total": 7, "has_more": False}
    beyond = page(entries, offset=["50"], **DAY)
    assert beyond["data"] == [] and beyond["pagination"]["total"] == 7  # type: ignore[index]
    default = page(entries, **DAY)
    assert default["pagination"] == {"limit": 50, "offset": 0, "total": 7, "has_more": False}


def ids_for(entries: list[LogEntry], **query: list[str]) -> list[str]:
    return [row["inference_id"] for row in page(entries, **query)["data"]]  # type: ignore[index]


ENTRIES = [
    entry(1, "blackforestlabs/flux-2-edit", inference_id="edit"),
    entry(2, status="failed", inference_id="failed"),
    entry(3, "blackforestlabs/flux-2-max", inference_id="max"),
    entry(60 * 30, inference_id="yesterday"),
]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({"model": ["blackforestlabs/flux-2-max"]}, ["max"]),
        ({"model": ["flux-2-max"]}, ["max"]),
        ({"model": ["flux-2-max", "flux-2-edit"]}, ["edit", "max"]),
        ({"model": ["flux-2-max,flux-2-edit"]}, []),
        ({"model": ["flux"]}, []),
        ({"status": ["failed"]}, ["failed"]),
        ({"status": ["succeeded", "failed"]}, ["edit", "failed", "max"]),
        ({"status": ["succeeded"], "model": ["flux-2"]}, []),
    ],
    ids=[
        "full-id",
        "bare-alias",
        "repeated",
        "comma-matches-nothing",
        "no-prefix-match",
        "failed",
        "both-statuses",
        "and-across",
    ],
)
def test_filters(query: dict[str, list[str]], expected: list[str]) -> None:
    assert ids_for(ENTRIES, **query, **DAY) == expected


@pytest.mark.parametrize(
    ("window", "expected"),
    [
        ({"period": ["1h"]}, ["edit", "failed", "max"]),
        ({"period": ["2d"]}, ["edit", "failed", "max", "yesterday"]),
        ({"start": ["2026-08-19T00:00:00Z"], "end": ["2026-08-19T12:00:00Z"]}, ["yesterday"]),
        ({"start": ["2026-08-19T05:00:00"], "end": ["2026-08-19T05:00:00-02:00"]}, ["yesterday"]),
        ({"start": ["2026-08-20"], "end": ["2026-08-21"]}, ["edit", "failed", "max"]),
        (
            {"start": ["2026-05-20T12:00Z"], "end": ["2026-08-20T12:00Z"]},
            ["edit", "failed", "max", "yesterday"],
        ),
    ],
    ids=["hours", "days", "start-end", "no-offset-is-utc", "dates", "exactly-92-days"],
)
def test_windows(window: dict[str, list[str]], expected: list[str]) -> None:
    assert ids_for(ENTRIES, **window) == expected


@pytest.mark.parametrize(
    ("query", "lines"),
    [
        ({}, ["period: Required: give 'period' (such as '24h') or both 'start' and 'end'"]),
        (
            {"period": ["24h"], "start": ["2026-08-19"]},
            ["period: Give either 'period' or 'start' and 'end', not both"],
        ),
        ({"start": ["2026-08-19"]}, ["end: Required with 'start' and 'end' given together"]),
        (
            {"period": ["3w"]},
            [
                "period: Expected a positive whole number followed by 'h' or 'd' (such as "
                "'24h' or '7d'), received '3w'"
            ],
        ),
        (
            {"period": ["0h"]},
            [
                "period: Expected a positive whole number followed by 'h' or 'd' (such as "
                "'24h' or '7d'), received '0h'"
            ],
        ),
        ({"period": ["93d"]}, ["period: The window may span at most 92 days"]),
        ({"period": ["2209h"]}, ["period: The window may span at most 92 days"]),
        (
            {"start": ["yesterday"], "end": ["2026-08-20"]},
            ["start: Expected an ISO 8601 date or date-time, received 'yesterday'"],
        ),
        (
            {"start": ["2026-08-20"], "end": ["2026-08-19"]},
            ["end: Must not be before start ('2026-08-20')"],
        ),
        (
            {"start": ["2026-01-01"], "end": ["2026-08-19"]},
            ["end: The window may span at most 92 days"],
        ),
        (
            {"status": ["succeeded,failed"], **DAY},
            [
                "status: Invalid enum value. Expected 'succeeded' | 'failed', received "
                "'succeeded,failed' (repeat the parameter for several values)"
            ],
        ),
        (
            {"status": ["done"], **DAY},
            ["status: Invalid enum value. Expected 'succeeded' | 'failed', received 'done'"],
        ),
        ({"limit": ["0"], **DAY}, ["limit: Number must be greater than or equal to 1, received 0"]),
        (
            {"limit": ["101"], **DAY},
            ["limit: Number must be less than or equal to 100, received 101"],
        ),
        ({"limit": ["ten"], **DAY}, ["limit: Expected a whole number, received 'ten'"]),
        ({"offset": ["-1"], **DAY}, ["offset: Expected a whole number, received '-1'"]),
        ({"limit": ["5", "6"], **DAY}, ["limit: Expected one value, received several"]),
        (
            {"model": [f"m{n}" for n in range(51)], **DAY},
            ["model: At most 50 models may be given, received 51"],
        ),
        (
            {"limit": ["0"], "offset": ["x"], "status": ["done"]},
            [
                "period: Required: give 'period' (such as '24h') or both 'start' and 'end'",
                "status: Invalid enum value. Expected 'succeeded' | 'failed', received 'done'",
                "limit: Number must be greater than or equal to 1, received 0",
                "offset: Expected a whole number, received 'x'",
            ],
        ),
    ],
    ids=[
        "no-window",
        "both-windows",
        "start-without-end",
        "bad-period",
        "zero-period",
        "93-days",
        "hours-over-92-days",
        "bad-date",
        "end-before-start",
        "window-too-long",
        "comma-status",
        "unknown-status",
        "limit-0",
        "limit-101",
        "limit-not-a-number",
        "negative-offset",
        "repeated-limit",
        "51-models",
        "every-problem-at-once",
    ],
)
def test_bad_queries_get_a_400_naming_each_problem(
    query: dict[str, list[str]], lines: list[str]
) -> None:
    with pytest.raises(ApiError) as refused:
        page(ENTRIES, **query)
    assert refused.value.status == 400
    assert refused.value.message.splitlines() == ["Query validation error", *lines]
    assert [v.field for v in refused.value.violations] == [line.split(":")[0] for line in lines]


def test_unknown_parameters_are_ignored() -> None:
    assert ids_for(ENTRIES, key_prefix=["sk-abc"], include=["x"], **DAY) == [
        "edit",
        "failed",
        "max",
    ]
