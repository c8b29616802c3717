"""The account routes an app calls around its generations: the model list, the balance, the logs.

They answer from this run's state: the loaded specs, the credits ledger and the usage log the
pipeline writes for every generation. Like the API, the model list needs no key.
"""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import parse_qs

from ..controls.ledger import CreditLedger, balance_body
from ..controls.usage import UsageLog, logs_page
from ..engine.service import ImageService
from ..engine.synthesis import encode_json
from ..errors import ApiError
from ..spec.catalog import etag_matches, models_json
from ..types import Answer
from .answers import error_answer, json_answer

MODEL_PATHS = ("/v1/models", "/models", "/api/v1/models")
BALANCE_PATH = "/v1/billing/balance"
LOGS_PATH = "/v2/logs"
PATHS = frozenset((*MODEL_PATHS, BALANCE_PATH, LOGS_PATH))
"""Every account route; each answers GET (and HEAD) only."""


class Account:
    """Answers the account routes for one fake."""

    def __init__(self, service: ImageService, ledger: CreditLedger, usage: UsageLog) -> None:
        self.service = service
        self.ledger = ledger
        self.usage = usage

    def answer(
        self, path: str, query: bytes, headers: dict[bytes, bytes], request_id: str
    ) -> Answer:
        """The answer to ``GET path?query`` (``path`` is one of :data:`PATHS`)."""
        params = parse_qs(query.decode("latin-1"), keep_blank_values=True)
        try:
            if path in MODEL_PATHS:
                return self.models(params, headers, request_id)
            authorization = headers.get(b"authorization")
            self.service.authorize(authorization.decode("latin-1") if authorization else None)
            if path == BALANCE_PATH:
                return json_answer(200, encode_json(balance_body(self.ledger)), request_id)
            page = logs_page(self.usage.newest_first(), params, datetime.now(UTC))
            return json_answer(200, encode_json(page), request_id)
        except ApiError as error:
            return error_answer(error, path, request_id)

    def models(
        self, params: dict[str, list[str]], headers: dict[bytes, bytes], request_id: str
    ) -> Answer:
        content, etag = models_json(
            self.service.spec_set, params.get("id", ()), params.get("type", ())
        )
        if_none_match = headers.get(b"if-none-match")
        if etag_matches(if_none_match.decode("latin-1") if if_none_match else None, etag):
            return Answer(304, [(b"etag", etag.encode("ascii"))], b"")
        answer = json_answer(200, content, request_id)
        answer.headers.append((b"etag", etag.encode("ascii")))
        return answer
