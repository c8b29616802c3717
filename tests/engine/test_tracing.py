import re

import pytest

from mock_server.engine.tracing import client_request_id, new_inference_id


def test_inference_ids_are_21_characters_of_the_nanoid_alphabet() -> None:
    ids = [new_inference_id() for _ in range(2000)]
    assert all(re.fullmatch(r"[A-Za-z0-9_-]{21}", value) for value in ids)
    assert len(set(ids)) == len(ids)


def test_inference_ids_use_the_whole_alphabet() -> None:
    # Every one of the 64 characters turns up, at every position, in enough ids.
    ids = [new_inference_id() for _ in range(4000)]
    assert len(set("".join(ids))) == 64
    for position in (0, 20):
        assert len({value[position] for value in ids}) == 64


@pytest.mark.parametrize(
    "value",
    ["order-8f21c4", "a", "A.b_c:d-e", "0" * 128, "2026-08-19T10:00:00.000"],
    ids=["doc-example", "one-char", "every-punctuation", "128-chars", "timestamp"],
)
def test_valid_client_request_ids_are_kept(value: str) -> None:
    assert client_request_id(value) == value


@pytest.mark.parametrize(
    "value",
    [None, "", "0" * 129, "order 1", "order/1", "ordér", "id\n", "a,b", "x" * 10_000],
    ids=[
        "absent",
        "empty",
        "129-chars",
        "space",
        "slash",
        "non-ascii",
        "trailing-newline",
        "comma",
        "huge",
    ],
)
def test_invalid_client_request_ids_are_dropped(value: str | None) -> None:
    assert client_request_id(value) is None
