"""Looking as a person would (issue 15 §2): page 1 of the signed revision and of the forgery rendered
with pdftoppm differ, and the verification report names a visual difference on page 1 whose box
(PDF points, origin bottom-left) overlaps the pixels that changed."""
from __future__ import annotations

import pytest

from api.container import Container

from . import documents, doors, forge, render
from .attacks import BY_NAME

VISUAL = ["overlay_signature_field", "unhide_hidden_widget", "replace_field_value_and_appearance",
          "overwrite_appearance_in_place", "freetext_annotation", "content_appended"]


def test_broken_startxref_shows_the_forgery_to_viewers(sample_pdf: bytes) -> None:
    """Why the ISA with a dangling ``startxref`` matters although kyso refuses to read it: poppler
    repairs the file and shows the forged page 1 (PDFium does the same)."""
    seen = render.difference_box(render.render(sample_pdf), render.render(forge.broken_startxref(sample_pdf)))
    assert seen is not None and render.intersects(seen, forge.NAME_BOX)


@pytest.mark.parametrize("name", VISUAL)
def test_rendering_shows_the_difference_the_report_names(pki: Container, specialist: str, sample_pdf: bytes,
                                                         name: str) -> None:
    attack = BY_NAME[name]
    signed = documents.sign(pki, specialist, documents.bait(sample_pdf, attack.bait), "approval")
    forged = attack.make(signed.pdf)

    seen = render.difference_box(render.render(signed.pdf), render.render(forged))
    assert seen is not None and render.intersects(seen, forge.NAME_BOX), f"the forgery changes page 1 there: {seen}"

    report = pki.verifier.verify(forged)
    boxes = [v.box for v in report.visual_differences if v.page == 1 and v.box is not None]
    assert any(render.intersects(seen, box) for box in boxes), (
        f"the pixels changed at {tuple(round(v) for v in seen)} but the report names "
        f"{[(v.page, v.kind, v.box) for v in report.visual_differences]}: {doors.describe(report)}")
    offered = report.signed_revision
    assert offered is not None and offered.length == len(signed.pdf), f"signed revision offered: {offered}"
    assert render.difference_box(render.render(signed.pdf), render.render(forged[:offered.length])) is None
