"""PDF uploads to POST /api/v1/verify and /api/v1/sign: random bytes, truncated and mutated real PDFs are
answered (a report, a signed PDF) or refused with a 4xx in kyso's error shape, never a 500; decompression
bombs and deeply nested objects are refused with a clear 4xx, quickly and in bounded memory."""
from __future__ import annotations

import base64
import os
import resource
import time
import tracemalloc

import pytest
from hypothesis import HealthCheck, Phase, event, given, settings

from tests.helpers.hostile import Kyso, assert_refused_clearly, corpus_pdfs

from . import bombs
from .strategies import hostile_bytes

EXAMPLES = int(os.environ.get("KYSO_HOSTILE_EXAMPLES", "40"))  # more for a deeper local run
FUZZ = settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
                phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
SECONDS_PER_REQUEST = 20  # generous for 2 shared cores; a hang or a quadratic blow-up takes far longer
PDFS = hostile_bytes(*corpus_pdfs()[:6])


def _answered_or_refused(response, started: float) -> None:  # type: ignore[no-untyped-def]
    assert time.monotonic() - started < SECONDS_PER_REQUEST
    event(f"{response.status_code} {response.json()['error']['message'][:40] if response.status_code >= 400 else ''}")
    assert response.status_code < 500, (response.status_code, response.text[:500])
    if response.status_code >= 400:
        assert_refused_clearly(response)


@FUZZ
@given(pdf=PDFS)
def test_verify_answers_or_refuses_any_upload(kyso: Kyso, pdf: bytes) -> None:
    started = time.monotonic()
    response = kyso.client.post("/api/v1/verify", files={"file": ("x.pdf", pdf, "application/pdf")})
    _answered_or_refused(response, started)
    if response.status_code == 200:
        assert response.json()["indication"] in ("TOTAL-PASSED", "TOTAL-FAILED", "INDETERMINATE")


@FUZZ
@given(pdf=PDFS)
def test_verify_as_body_answers_or_refuses(kyso: Kyso, pdf: bytes) -> None:
    started = time.monotonic()
    response = kyso.client.post("/api/v1/verify", content=pdf, headers={"Content-Type": "application/pdf"})
    _answered_or_refused(response, started)


@settings(FUZZ, max_examples=max(1, EXAMPLES * 5 // 8))  # each signs or asks for a SAD: slower
@given(pdf=PDFS)
def test_sign_signs_or_refuses_any_upload(kyso: Kyso, pdf: bytes) -> None:
    started = time.monotonic()
    response = kyso.sign(pdf, visible=True)
    _answered_or_refused(response, started)
    if response.status_code == 200:
        assert response.content.startswith(pdf[:5]) and response.headers["x-document-id"]


HOSTILE = {
    "flate-bomb-1GB": bombs.flate_bomb_page,
    "two-flate-layers-1GB": bombs.double_flate_bomb,
    "object-stream-bomb-1GB": bombs.object_stream_bomb,
    "100k-nested-arrays": lambda: bombs.nested_arrays(100_000),
    "100k-nested-dicts": lambda: bombs.nested_arrays(100_000, b"dict"),
}
SENDERS = {
    "verify": lambda kyso, pdf: kyso.client.post("/api/v1/verify", files={"file": ("x.pdf", pdf, "application/pdf")}),
    "verify-body": lambda kyso, pdf: kyso.client.post("/api/v1/verify", content=pdf,
                                                      headers={"Content-Type": "application/pdf"}),
    "sign": lambda kyso, pdf: kyso.sign(pdf, visible=True, authorize=False),  # refused before any SAD is asked
    "csc-signDoc": lambda kyso, pdf: kyso.client.post("/csc/v2/signatures/signDoc", headers=kyso.headers["client"], json={
        "credentialID": kyso.specialist, "documents": [{"document": base64.b64encode(pdf).decode(),
                                                        "signature_format": "P", "conformance_level": "Ades-B-B"}],
        "kyso": {"document_type": "dossier-result", "commune_code": "00004"}}),
}
MEMORY_BOUND = 64 << 20  # traced Python allocations while the request runs (the bombs inflate to 1 GiB)
RSS_BOUND = 300 << 20


@pytest.mark.parametrize("sender", sorted(SENDERS))
@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_pdf_is_refused_quickly_in_bounded_memory(kyso: Kyso, name: str, sender: str) -> None:
    pdf = HOSTILE[name]()
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    tracemalloc.start()
    started = time.monotonic()
    try:
        response = SENDERS[sender](kyso, pdf)
        elapsed = time.monotonic() - started
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    if sender.startswith("csc"):  # CSC's own error shape, 400 for a request it cannot use
        assert response.status_code == 400, response.text[:500]
        error = {"code": response.json()["error"], "message": response.json()["error_description"]}
    else:
        error = assert_refused_clearly(response, 422)
    assert error["code"] == "hostile_pdf", error
    assert ("decompression bomb" in error["message"] or "inflate" in error["message"]
            or "deep" in error["message"]), error
    assert elapsed < 10, elapsed
    assert peak - len(pdf) * 4 < MEMORY_BOUND, f"{peak / 2**20:.0f} MiB traced"
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - rss_before < RSS_BOUND


def test_real_documents_pass_the_structure_check() -> None:
    """No false alarm on the corpus (a 9000 x 9000 RGB image that inflates to 243 MB at 540:1 included)."""
    from api.uploads import check_structure
    from tests.helpers.signing import CORPUS

    for path in sorted(CORPUS.glob("*.pdf")):
        check_structure(path.read_bytes(), path.name)
    check_structure(bombs.nested_arrays(90))  # deep, but not absurd
    check_structure(bombs.nested_references(5000))  # long chains of references are not nesting
