"""Honest workflows stay genuine through every door once the verifier stops being fooled (specialist
then seal, with and without kyso's visible stamps; certified then seal; two specialists then seal;
B-LTA; B-B raised to B-LT later by the upgrader)."""
from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.container import Container

from . import doors
from .workflows import WORKFLOWS


@pytest.mark.parametrize("workflow", WORKFLOWS, ids=lambda w: w.__name__)
def test_honest_workflow_is_genuine_at_every_door(pki: Container, client: TestClient, specialist: str, seal: str,
                                                  sample_pdf: bytes, tmp_path: Path, workflow) -> None:  # type: ignore[no-untyped-def]
    signed = workflow(pki, sample_pdf, specialist, seal)

    doors.assert_genuine_everywhere(pki, client, signed.pdf, signed.document_id, tmp_path)
    report = pki.verifier.verify(signed.pdf)
    assert not report.modifications and not report.visual_differences, doors.describe(report)
