"""A PDF certified with "no changes allowed" (DocMDP P=1) is refused for what it is, not as damaged
(issue 18): the file is sound, its certification forbids the signature kyso would add. Vietnamese first."""
from __future__ import annotations

import asyncio
from io import BytesIO

import pytest
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.sign import fields, signers

from api.container import Container
from signing.create import intake
from signing.errors import CertifiedPdfLocked
from tests.helpers.clock import FrozenClock
from tests.helpers.pdfs import ForeignCA
from tests.helpers.signing import CONSENTED, CORPUS, documents, request


def certified(foreign: ForeignCA, permission: fields.MDPPerm) -> bytes:
    meta = signers.PdfSignatureMetadata(field_name="Certification", md_algorithm="sha256", certify=True,
                                        docmdp_permissions=permission, subfilter=fields.SigSeedSubFilter.PADES)
    writer = IncrementalPdfFileWriter(BytesIO((CORPUS / "fourpages.pdf").read_bytes()), strict=False)
    out = BytesIO()
    signer = signers.PdfSigner(meta, foreign.signer_for_pyhanko(pss=False))
    asyncio.run(signer.async_sign_pdf(writer, output=out))
    return out.getvalue()


def test_a_no_changes_certification_is_refused_as_such(pki: Container, specialist: str,
                                                       frozen: FrozenClock) -> None:
    locked = certified(ForeignCA.create(frozen.moment), fields.MDPPerm.NO_CHANGES)

    with pytest.raises(CertifiedPdfLocked) as caught:
        pki.signing.sign(request(locked, specialist, "B-T"), actor="test", activation=CONSENTED)

    message = str(caught.value)
    assert caught.value.code == "certified_pdf_no_changes"
    assert message.startswith("tệp PDF đã được chứng nhận") and "không cho phép thay đổi" in message
    assert "certification forbids changes" in message
    assert "damaged" not in message and "re-export" not in message
    assert documents(pki) == 0
    with pytest.raises(CertifiedPdfLocked):  # a signing request is refused at submission, the same way
        pki.signing.check_input(locked)


def test_a_certification_that_allows_signing_is_not_locked(frozen: FrozenClock) -> None:
    fill_in = certified(ForeignCA.create(frozen.moment), fields.MDPPerm.FILL_FORMS)
    assert intake.prepare(fill_in).pdf == fill_in
