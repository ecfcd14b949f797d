"""One approval and one certified document per attack class, carried through all three doors:
``POST /api/v1/verify``, ``kyso verify`` and the citizen page's upload. Each must answer "not
genuine" (or refuse with a clear 4xx), never 500, and the citizen page must not go green nor say
the content is unaltered."""
from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.container import Container

from . import documents, doors
from .attacks import BY_NAME

REPRESENTATIVES = ["overlay_signature_field", "unhide_hidden_widget", "replace_field_value_and_appearance",
                   "freetext_annotation", "page_added", "content_appended", "isa_no_xref", "isa_stale_startxref",
                   "isa_broken_startxref",
                   "signature_wrapping", "usf_byterange_null", "usf_byterange_dictionary", "usf_contents_removed"]


@pytest.mark.parametrize("kind", ["approval", "certified"])
@pytest.mark.parametrize("name", REPRESENTATIVES)
def test_forgery_is_not_genuine_at_any_door(pki: Container, client: TestClient, specialist: str, sample_pdf: bytes,
                                            tmp_path: Path, name: str, kind: str) -> None:
    attack = BY_NAME[name]
    signed = documents.sign(pki, specialist, documents.bait(sample_pdf, attack.bait), kind)  # type: ignore[arg-type]

    doors.assert_refused_everywhere(pki, client, attack.make(signed.pdf), signed.document_id, tmp_path)


def test_forgery_then_timestamp_is_not_genuine_at_any_door(pki: Container, client: TestClient, specialist: str,
                                                          sample_pdf: bytes, tmp_path: Path) -> None:
    """A document timestamp from kyso's public TSA after the overlay does not make it accountable."""
    signed = documents.sign(pki, specialist, sample_pdf, "approval")
    forged = documents.timestamp(pki, BY_NAME["overlay_signature_field"].make(signed.pdf))

    doors.assert_refused_everywhere(pki, client, forged, signed.document_id, tmp_path)
