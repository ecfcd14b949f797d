"""Reports in plain Vietnamese (issue 18, item 5): the two cases named correctly."""
from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path

import pytest

from api.container import Container
from signing.verify.verifier import Verifier
from tests.helpers.clock import FrozenClock
from tests.helpers.pdfs import ForeignCA, trusting
from tests.helpers.signing import CORPUS


@pytest.mark.parametrize("fetch", [False, True], ids=["offline", "fetching"])
@pytest.mark.parametrize("revinfo", ["crl", "ocsp", None])
def test_expired_foreign_signer_without_poe_is_out_of_bounds(pki: Container, frozen: FrozenClock, tmp_path: Path,
                                                             revinfo: str | None, fetch: bool) -> None:
    foreign = ForeignCA.create(frozen.moment)
    pdf = foreign.sign((CORPUS / "pdfa-multipage.pdf").read_bytes(), pss=True, revinfo=revinfo)
    frozen.set(foreign.signer.not_valid_after_utc + dt.timedelta(days=1))

    verifier = trusting(pki, [foreign.write_root(tmp_path)])
    if fetch:
        settings = pki.settings.model_copy(update={"trust_anchors": [tmp_path / "foreign-root.pem"],
                                                   "verify_fetch_revocation": True})
        verifier = Verifier(dataclasses.replace(pki.pki, settings=settings), pki.signing.material)
    report = verifier.verify(pdf)

    [s] = report.signatures
    assert (s.indication, s.sub_indication) == ("INDETERMINATE", "OUT_OF_BOUNDS_NO_POE"), s.summary.en


@pytest.mark.parametrize("fetch", [False, True], ids=["offline", "fetching"])
@pytest.mark.parametrize("revinfo", ["crl", None])
def test_signer_expired_before_signing(pki: Container, frozen: FrozenClock, tmp_path: Path,
                                       revinfo: str | None, fetch: bool) -> None:
    foreign = ForeignCA.create(frozen.moment - dt.timedelta(days=800))
    pdf = foreign.sign((CORPUS / "pdfa-multipage.pdf").read_bytes(), pss=True, revinfo=revinfo)

    settings = pki.settings.model_copy(update={"trust_anchors": [foreign.write_root(tmp_path)],
                                               "verify_fetch_revocation": fetch})
    report = Verifier(dataclasses.replace(pki.pki, settings=settings), pki.signing.material).verify(pdf)

    [s] = report.signatures
    assert (s.indication, s.sub_indication) == ("INDETERMINATE", "OUT_OF_BOUNDS_NO_POE"), s.summary.en
