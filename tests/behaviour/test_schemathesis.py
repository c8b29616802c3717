"""schemathesis in negative mode against the fake: every mutated request is rejected cleanly.

The bundled specs document each error the fake sends (400, 401, 413, 415, ...) with the error
envelope, so schemathesis's own checks apply unchanged: no 5xx, a documented status code and
content type, a body matching the documented schema, and negative data rejected. The default run
generates a few dozen examples per operation (the coverage phase adds its own ~150);
``AIMLAPI_MOCK_LONG_TESTS=1`` raises that to 1000.
"""

from __future__ import annotations

import os
from pathlib import Path

import schemathesis
from schemathesis.generation.modes import GenerationMode

from mock_server import Settings, create_app

SPECS = Path(__file__).resolve().parents[2] / "fixtures" / "specs"
LONG = os.environ.get("AIMLAPI_MOCK_LONG_TESTS") == "1"
EXAMPLES = 1000 if LONG else 30
KEY = "negative-test-key"


def _negative_schema(spec: str) -> schemathesis.schemas.BaseSchema:
    schema = schemathesis.openapi.from_path(SPECS / spec)
    # A real key: schemathesis also checks that made-up credentials get a 401.
    schema.app = create_app(Settings(auth="keys", api_keys=(KEY,)))
    schema.config.generation.update(modes=[GenerationMode.NEGATIVE], max_examples=EXAMPLES)
    return schema


flux_2 = _negative_schema("flux-2.yaml")
flux_2_max = _negative_schema("flux-2-max.yaml")


@flux_2.parametrize()
def test_flux_2_rejects_negative_data(case: schemathesis.Case) -> None:
    case.call_and_validate(headers={"Authorization": f"Bearer {KEY}"})


@flux_2_max.parametrize()
def test_flux_2_max_rejects_negative_data(case: schemathesis.Case) -> None:
    case.call_and_validate(headers={"Authorization": f"Bearer {KEY}"})
