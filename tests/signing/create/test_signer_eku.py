"""kyso refuses to sign with a certificate whose EKU does not allow documents (issue 15, item 5).

kyso's own specialist and seal profiles carry documentSigning + emailProtection; a certificate issued
under a profile file edited to drop them (or an older one) must not sign, whatever its profile name.
"""
from __future__ import annotations

import dataclasses

import pytest

from api.container import Container
from policies.profiles import ProfileSet
from signing.errors import SigningRefused
from tests.helpers.signing import CONSENTED, documents, issue_credential, request


@pytest.mark.parametrize("eku", [(), ("clientAuth",)], ids=["no-eku", "client-auth"])
def test_specialist_certificate_without_document_eku_cannot_sign(pki: Container, sample_pdf: bytes,
                                                                 eku: tuple[str, ...]) -> None:
    edited = pki.pki.profiles.get("specialist").model_copy(update={"extended_key_usage": eku})
    profiles = ProfileSet({name: edited if name == "specialist" else pki.pki.profiles.get(name)
                           for name in pki.pki.profiles.names()})
    credential = issue_credential(dataclasses.replace(pki, pki=dataclasses.replace(pki.pki, profiles=profiles)))

    with pytest.raises(SigningRefused, match=r"specialist certificate whose extended key usage \((none|clientAuth)\) "
                                             r"names neither documentSigning nor emailProtection"):
        pki.signing.sign(request(sample_pdf, credential), actor="test", activation=CONSENTED)
    assert documents(pki) == 0


def test_specialist_with_document_eku_signs(pki: Container, specialist: str, sample_pdf: bytes) -> None:
    assert pki.signing.sign(request(sample_pdf, specialist), actor="test", activation=CONSENTED).document_id
