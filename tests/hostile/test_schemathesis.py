"""schemathesis over kyso's own OpenAPI schema: every operation, called with generated requests by an
operator (the policy routes by a policy admin), by a client token and by a client token scoped to another
commune and to reading, answers without a 5xx,
with a status its schema declares, in a declared content type, with a body that matches the schema.

Bounded for `make test`: a few derandomized examples per operation and generation mode (reproducible:
the same examples on every run), no shrinking, no example database. Failures are collected over all
operations and reported together, each with a curl command that reproduces it. More examples:
``KYSO_HOSTILE_EXAMPLES=50``.

Nothing is excluded: destructive operations (revoke a CA, approve, merge communes) only file approvals
or hit generated names that do not exist, so the fixture stays usable for later examples.
"""
from __future__ import annotations

import os
import time

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings, strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.helpers.hostile import Kyso, corpus_pdfs

from .strategies import ocsp_requests, pngs, tsa_queries

EXAMPLES = int(os.environ.get("KYSO_HOSTILE_EXAMPLES", "10"))
CHECKS = [not_a_server_error, response_schema_conformance, status_code_conformance, content_type_conformance]
# api/routes/ops.py (owned by the operations work) does not declare its error answers yet: its APIRouter
# needs ``responses=API_ERRORS`` from api/schemas.py. Until then its statuses are not checked here; drop
# this set when it does.
UNDECLARED_ERRORS: set[str] = set()


def _register_binary_media_types() -> None:
    """Bodies schemathesis cannot invent from a JSON schema: DER protocol requests, PDFs, PNGs."""
    schemathesis.openapi.media_type("application/timestamp-query", tsa_queries())
    schemathesis.openapi.media_type("application/ocsp-request", ocsp_requests())
    schemathesis.openapi.media_type("application/pdf", st.sampled_from(corpus_pdfs()) | st.binary(max_size=2000))
    schemathesis.openapi.media_type("image/png", pngs())


def _run(kyso: Kyso, headers_for, modes) -> list[str]:  # type: ignore[no-untyped-def]
    _register_binary_media_types()
    schema = schemathesis.openapi.from_asgi("/openapi.json", kyso.client.app)
    failures: list[str] = []
    timings: list[tuple[float, str]] = []
    for result in schema.get_all_operations():
        operation = result.ok()
        headers = headers_for(operation.path)
        checks = [c for c in CHECKS if not (c is status_code_conformance and operation.path in UNDECLARED_ERRORS)]
        for mode in modes:
            @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
                      phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
            @given(case=operation.as_strategy(generation_mode=mode))
            def run(case) -> None:  # type: ignore[no-untyped-def]
                case.call_and_validate(headers=headers, checks=checks)

            start = time.monotonic()
            try:
                run()
            except Unsatisfiable:  # no invalid request exists (no parameters, or a free-form binary body)
                pass
            except (Exception, BaseExceptionGroup) as exc:  # noqa: BLE001 - reported below, all at once
                failures.append(f"{operation.label} ({mode.value}): {str(exc)[:1500]}")
            timings.append((time.monotonic() - start, f"{operation.label} ({mode.value})"))
    slowest = ", ".join(f"{label} {t:.1f}s" for t, label in sorted(timings, reverse=True)[:5])
    print(f"\n{len(timings)} runs; slowest: {slowest}")
    return failures


def test_every_operation_answers_an_operator_as_its_schema_says(kyso: Kyso) -> None:
    def headers_for(path: str) -> dict[str, str]:
        return kyso.headers["policy-admin" if path.startswith("/api/v1/policies") else "ca-operator"]

    failures = _run(kyso, headers_for, [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
    assert not failures, f"{len(failures)} operations failed:\n\n" + "\n\n".join(failures)


@pytest.mark.parametrize("token", ["client", "scoped-client"])
def test_every_operation_answers_a_client_as_its_schema_says(kyso: Kyso, token: str) -> None:
    """An unscoped client token, and one scoped to another commune, reading only (most answers: 403/404)."""
    failures = _run(kyso, lambda _: kyso.headers[token], [GenerationMode.POSITIVE])
    assert not failures, f"{len(failures)} operations failed:\n\n" + "\n\n".join(failures)
