"""The metadata of POST /api/v1/sign from a hostile client: appearance boxes that are infinite, NaN,
inverted or off the page, page numbers far out of range, odd titles and field names. Signed, or refused
with a clear 4xx; never a 500 (the metadata is a JSON string inside multipart, so schemathesis cannot
generate its structure: this test does)."""
from __future__ import annotations

import json
import os

from hypothesis import HealthCheck, Phase, event, given, settings, strategies as st

from tests.helpers.hostile import Kyso, assert_refused_clearly
from tests.helpers.signing import CORPUS

EXAMPLES = int(os.environ.get("KYSO_HOSTILE_EXAMPLES", "30"))
PDF = (CORPUS / "fourpages.pdf").read_bytes()
numbers = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-10**6, 10**6).map(float),
                    st.sampled_from([0.0, -1.0, 1e308, -1e308, 5e-324]))
appearances = st.fixed_dictionaries({}, optional={
    "visible": st.booleans(),
    "kind": st.sampled_from(["person", "seal", "copy"]),
    "field_name": st.text(max_size=100),
    "page": st.one_of(st.integers(-10, 10), st.integers(-2**70, 2**70)),
    "box": st.tuples(numbers, numbers, numbers, numbers),
    "title": st.text(max_size=200),
    "copy_form": st.text(max_size=40),
    "document_number": st.text(max_size=100),
})


@settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
          phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
@given(appearance=appearances, reason=st.one_of(st.none(), st.text(max_size=200)))
def test_any_appearance_signs_or_is_refused_clearly(kyso: Kyso, appearance: dict, reason: str | None) -> None:
    metadata = {"document_type": "dossier-result", "commune_code": "00004", "credential_id": kyso.specialist,
                "level": "B-B", "appearance": appearance, "reason": reason,
                "sad": kyso.phone.authorize(kyso.client, kyso.headers["client"], PDF)}
    response = kyso.client.post("/api/v1/sign", files={"file": ("in.pdf", PDF, "application/pdf")},
                                data={"metadata": json.dumps(metadata)}, headers=kyso.headers["client"])
    assert response.status_code < 500, (response.status_code, response.text[:500], appearance)
    event("signed" if response.status_code == 200 else assert_refused_clearly(response)["code"])
