"""The attack catalogue the tests run: each attack names the bait the specialist signs, the forgery
made afterwards, and what a report that is not fooled must say about it."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from . import forge
from .documents import Bait


@dataclass(frozen=True)
class Attack:
    name: str
    bait: Bait
    make: Callable[[bytes], bytes]
    page: int | None  # the page the change is on (1-based), named by report.modifications; None: not a page change
    modifies: bool = True  # a modification the report must name (False: the signature itself is broken)
    visual: bool = False  # the forgery changes how page 1 looks


MODIFICATIONS = [
    Attack("overlay_signature_field", "plain", forge.overlay_signature_field, 1, visual=True),
    Attack("unhide_hidden_widget", "hidden", forge.unhide_widget, 1, visual=True),
    Attack("replace_field_value_and_appearance", "form", forge.replace_field_value, 1, visual=True),
    Attack("overwrite_appearance_in_place", "form", forge.overwrite_appearance, 1, visual=True),
    Attack("freetext_annotation", "plain", lambda pdf: forge.add_annotation(pdf, "FreeText"), 1, visual=True),
    Attack("stamp_annotation", "plain", lambda pdf: forge.add_annotation(pdf, "Stamp"), 1, visual=True),
    Attack("link_annotation", "plain", lambda pdf: forge.add_annotation(pdf, "Link"), 1, visual=True),
    Attack("page_added", "plain", forge.add_page, 5),  # after the 4 pages of fourpages.pdf
    Attack("page_replaced", "plain", forge.replace_page, 1, visual=True),
    Attack("content_appended", "plain", forge.append_content, 1, visual=True),
    Attack("isa_no_xref", "plain", forge.append_objects_without_xref, None),
    Attack("isa_stale_startxref", "plain", forge.stale_startxref, None),
    Attack("signature_wrapping", "plain", forge.signature_wrapping, None, modifies=False),
]

# the signature dictionary or the xref broken: a failure report or a clear 4xx refusal both do
MALFORMED = [
    *(Attack(f"usf_byterange_{v}", "plain", lambda pdf, v=v: forge.usf_byte_range(pdf, v), None, modifies=False)
      for v in forge.USF_BYTERANGE),
    *(Attack(f"usf_contents_{v}", "plain", lambda pdf, v=v: forge.usf_contents(pdf, v), None, modifies=False)
      for v in forge.USF_CONTENTS),
    Attack("overlay_signature_field_bogus_value", "plain",
           lambda pdf: forge.overlay_signature_field(pdf, bogus_value=True), 1, modifies=False),
    Attack("isa_broken_startxref", "plain", forge.broken_startxref, None, modifies=False, visual=True),
]

BY_NAME = {a.name: a for a in [*MODIFICATIONS, *MALFORMED]}
