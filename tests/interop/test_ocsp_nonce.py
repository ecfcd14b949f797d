"""OCSP nonces of 1-32 octets only (RFC 8954 2.1; issue 15, item 7).

The request is built with pyca/cryptography (``openssl ocsp`` cannot choose a nonce length), sent
by ``openssl ocsp -reqin`` to a live ``kyso serve``, and the answer is read by openssl and by
asn1crypto: an out-of-range nonce is answered malformedRequest, unsigned, with nothing echoed.
"""
from __future__ import annotations

from pathlib import Path

import pytest
from asn1crypto import ocsp as asn1_ocsp
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp

from tests.interop.helpers import RelyingParty, ocsp_nonces

pytestmark = pytest.mark.interop


@pytest.fixture
def rp(live_pki, tmp_path: Path) -> RelyingParty:  # type: ignore[no-untyped-def]
    container, server = live_pki
    return RelyingParty(container, server.url, tmp_path / "relying-party")


def _request(rp: RelyingParty, nonce: bytes) -> Path:
    leaf = rp.issue()
    cert = x509.load_pem_x509_certificate(leaf.pem.read_bytes())
    issuer = x509.load_pem_x509_certificate(rp.issuing_pem.read_bytes())
    request = (ocsp.OCSPRequestBuilder().add_certificate(cert, issuer, hashes.SHA1())
               .add_extension(x509.OCSPNonce(nonce), critical=False).build())
    path = rp.dir / f"nonce-{len(nonce)}.req"
    path.write_bytes(request.public_bytes(serialization.Encoding.DER))
    return path


def _ask(rp: RelyingParty, request: Path) -> tuple[str, asn1_ocsp.OCSPResponse]:
    answer = request.with_suffix(".resp")
    result = rp.openssl("ocsp", "-reqin", request.name, "-url", rp.url + "/ocsp", "-respout", answer.name,
                        "-resp_text", "-noverify")
    return result.output, asn1_ocsp.OCSPResponse.load(answer.read_bytes())


@pytest.mark.parametrize("length", [0, 33, 1024])
def test_an_empty_nonce_or_one_longer_than_32_octets_is_a_malformed_request(rp: RelyingParty, length: int) -> None:
    text, response = _ask(rp, _request(rp, b"\x5a" * length))

    assert "Responder Error: malformedrequest (1)" in text, text
    assert response["response_status"].native == "malformed_request"
    assert not response["response_bytes"]  # nothing signed, nothing echoed


@pytest.mark.parametrize("length", [1, 16, 32])
def test_nonces_of_1_to_32_octets_are_echoed(rp: RelyingParty, length: int) -> None:
    nonce = bytes(range(1, length + 1))
    text, response = _ask(rp, _request(rp, nonce))

    assert "Response Status: successful (0x0)" in text, text
    # openssl prints the extension value: the DER OCTET STRING (04, length) around the nonce
    assert ocsp_nonces(text)[-1] == (bytes([4, length]) + nonce).hex().upper(), text
    assert response["response_status"].native == "successful"
    basic = response.basic_ocsp_response["tbs_response_data"]
    [extension] = [e for e in basic["response_extensions"] if e["extn_id"].native == "nonce"]
    assert extension["extn_value"].parsed.native == nonce
    assert basic["responses"][0]["cert_status"].name == "good"
