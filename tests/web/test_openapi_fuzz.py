"""The HTTP API fuzzed from its own OpenAPI spec (schemathesis): no server error, and
every answer conforms to the spec, signed in as an investigator and as an admin."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Ok
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


def _bearer(sign_in: Callable[[str], TestClient], username: str) -> dict[str, str]:
    with sign_in(username) as client:
        return {"Authorization": f"Bearer {client.cookies['molehunt_session']}"}


@pytest.fixture(scope="module")
def tokens(sign_in: Callable[[str], TestClient]) -> dict[str, dict[str, str]]:
    return {role: _bearer(sign_in, role) for role in ("investigator", "admin")}


FUZZ = settings(
    max_examples=15,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)


@pytest.mark.parametrize("role", ["investigator", "admin"])
def test_the_api_conforms_to_its_spec(
    role: str, web_app: FastAPI, tokens: dict[str, dict[str, str]]
) -> None:
    headers = tokens[role]
    loaded = schemathesis.openapi.from_asgi("/openapi.json", web_app, headers=headers)
    # Signing out would end the token every later example is sent with.
    schema = loaded.exclude(method="DELETE", path="/api/session")
    operations = []
    for result in schema.get_all_operations():
        assert isinstance(result, Ok), result
        operations.append(result.ok())
    assert len(operations) > 20
    for operation in operations:

        @given(case=operation.as_strategy())
        @FUZZ
        def fuzz(case: schemathesis.Case[Any]) -> None:
            case.call_and_validate(headers=headers, checks=CHECKS)

        fuzz()
    # Every example above was sent signed in: the token still works.
    assert TestClient(web_app).get("/api/me", headers=headers).json()["role"] == role
