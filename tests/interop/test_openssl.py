"""OpenSSL as a relying party: path validation with CRLs, OCSP (POST and GET), CRL parsing,
CA certificate download and Vietnamese names, all against a real ``kyso serve`` process."""
from __future__ import annotations

import base64
import hashlib
import re
import secrets
import unicodedata
import urllib.parse
from pathlib import Path

import pytest

from api.container import Container
from hsm import KeyType
from pki import approvals, revocation
from pki.names import SubjectInfo
from pki.reasons import Reason
from tests import factories
from tests.helpers.clock import FrozenClock
from tests.interop.helpers import (
    ISSUING_CA,
    ROOT_CA,
    RelyingParty,
    Run,
    ca_cert_der,
    crl_entries,
    crl_number,
    delta_base_number,
    foreign_ca_and_leaf,
    issue,
    ocsp_nonces,
    openssl,
    openssl_serial,
    responder_cert_der,
    write_cert_pem,
)

pytestmark = pytest.mark.interop


@pytest.fixture
def rp(live_pki, tmp_path: Path) -> RelyingParty:  # type: ignore[no-untyped-def]
    container, server = live_pki
    return RelyingParty(container, server.url, tmp_path / "relying-party")


def revoke(rp: RelyingParty, serial: str, reason: Reason) -> None:
    revocation.revoke(rp.container.pki, serial, reason, "test")


def revoke_issuing_ca(rp: RelyingParty, reason: Reason) -> None:
    """Four eyes: one operator asks, another approves (revocation.revoke refuses a CA's certificate)."""
    asked = approvals.request(rp.container.pki, "revoke-ca", ISSUING_CA, "test", "cli:alice",
                              params={"revocation_reason": reason.value})
    approvals.approve(rp.container.pki, asked.id, "cli:bob")


# --- 1. openssl verify with CRLs ---------------------------------------------------------------

def test_verify_accepts_a_valid_specialist_and_rejects_it_once_revoked(rp: RelyingParty) -> None:
    leaf = rp.issue()

    before = rp.verify(leaf, rp.crl_pem(name="before"))
    assert before.returncode == 0, str(before)
    assert before.stdout.strip() == "leaf.pem: OK", str(before)

    revoke(rp, leaf.serial, Reason.keyCompromise)

    after = rp.verify(leaf, rp.crl_pem(name="after"))
    assert after.returncode != 0, str(after)
    assert "certificate revoked" in after.output, str(after)
    assert "error 23 at 0 depth lookup" in after.output, str(after)  # X509_V_ERR_CERT_REVOKED, the leaf
    assert "OK" not in after.stdout, str(after)


def test_crl_check_all_uses_the_root_crl_for_the_issuing_ca(rp: RelyingParty) -> None:
    leaf = rp.issue()
    issuing_crl, root_crl = rp.crl_pem(ISSUING_CA), rp.crl_pem(ROOT_CA)

    both = rp.verify(leaf, issuing_crl, root_crl, check_all=True)
    assert both.returncode == 0, str(both)
    assert both.stdout.strip() == "leaf.pem: OK", str(both)

    # -crl_check_all really needs the root's CRL: without it the issuing CA cannot be checked.
    missing = rp.verify(leaf, issuing_crl, check_all=True)
    assert missing.returncode != 0, str(missing)
    assert "unable to get certificate CRL" in missing.output, str(missing)

    # The root revokes the issuing CA: the leaf check alone still passes, the full chain does not.
    issuing_serial = rp.serial_of(rp.issuing_pem)
    revoke_issuing_ca(rp, Reason.cACompromise)
    root_crl = rp.crl_pem(ROOT_CA, name="root-after")
    assert crl_entries(rp.crl_text(rp.dir / "root-after.crl").stdout) == {
        openssl_serial(issuing_serial): "CA Compromise"}

    leaf_only = rp.verify(leaf, issuing_crl, root_crl)
    assert leaf_only.returncode == 0, str(leaf_only)
    chain = rp.verify(leaf, issuing_crl, root_crl, check_all=True)
    assert chain.returncode != 0, str(chain)
    assert "certificate revoked" in chain.output, str(chain)
    assert "error 23 at 1 depth lookup" in chain.output, str(chain)  # depth 1: the issuing CA


def test_every_end_entity_profile_validates_strictly_for_its_purpose(pki: Container, tmp_path: Path) -> None:
    """openssl verify -x509_strict over root -> issuing -> each end-entity profile, with the
    openssl purpose that matches the profile where openssl has one."""
    root = write_cert_pem(tmp_path / "root.pem", ca_cert_der(pki, ROOT_CA))
    issuing = write_cert_pem(tmp_path / "issuing.pem", ca_cert_der(pki, ISSUING_CA))
    cases = {
        "specialist": (issue(pki).der, "any"),
        "specialist-rsa": (issue(pki, key_type=KeyType.RSA_2048).der, "any"),
        "seal": (issue(pki, "seal", SubjectInfo(common_name="Ủy ban nhân dân Phường Ba Đình")).der, "any"),
        "tsa": (issue(pki, "tsa", SubjectInfo(common_name="kyso TSA", organization="kyso"), None).der,
                "timestampsign"),
        "ocsp-responder": (responder_cert_der(pki, ISSUING_CA), "ocsphelper"),
    }
    for name, (der, purpose) in cases.items():
        pem = write_cert_pem(tmp_path / f"{name}.pem", der)
        result = openssl("verify", "-x509_strict", "-purpose", purpose, "-CAfile", root.name,
                         "-untrusted", issuing.name, pem.name, cwd=tmp_path)
        assert result.returncode == 0, f"{name}:\n{result}"
        assert result.stdout.strip() == f"{name}.pem: OK", f"{name}:\n{result}"
    ca = openssl("verify", "-x509_strict", "-purpose", "any", "-CAfile", root.name, issuing.name, cwd=tmp_path)
    assert ca.returncode == 0 and ca.stdout.strip() == "issuing.pem: OK", str(ca)


# --- 2. openssl ocsp ---------------------------------------------------------------------------

def assert_ocsp_status(result: Run, name: str, status: str, *, nonce: bool) -> None:
    assert result.returncode == 0, str(result)
    assert "Response verify OK" in result.output, str(result)
    assert f"{name}: {status}\n" in result.stdout, str(result)
    assert "WARNING: no nonce in response" not in result.output, str(result)
    assert "WARNING: nonce verify error" not in result.output, str(result)
    if nonce:  # -req_text prints the request's nonce, -resp_text the response's: it must be echoed
        request_nonce, response_nonce = ocsp_nonces(result.stdout)
        assert request_nonce == response_nonce, str(result)
    else:
        assert "OCSP Nonce" not in result.stdout, str(result)


@pytest.mark.parametrize("nonce", [True, False], ids=["nonce", "no_nonce"])
@pytest.mark.parametrize("reason", [Reason.keyCompromise, Reason.affiliationChanged])
def test_ocsp_good_then_revoked_with_reason(rp: RelyingParty, reason: Reason, nonce: bool) -> None:
    leaf = rp.issue()
    text = ("-req_text", "-resp_text")

    good = rp.ocsp("-cert", leaf.pem.name, nonce=nonce, extra=text)
    assert_ocsp_status(good, "leaf.pem", "good", nonce=nonce)
    assert "Cert Status: good" in good.stdout, str(good)
    assert f"Serial Number: {openssl_serial(leaf.serial)}" in good.stdout, str(good)

    revoke(rp, leaf.serial, reason)

    revoked = rp.ocsp("-cert", leaf.pem.name, nonce=nonce, extra=text)
    assert_ocsp_status(revoked, "leaf.pem", "revoked", nonce=nonce)
    assert f"Reason: {reason.value}\n" in revoked.stdout, str(revoked)
    assert f"Revocation Reason: {reason.value} (" in revoked.stdout, str(revoked)
    assert "Revocation Time:" in revoked.stdout, str(revoked)


@pytest.mark.parametrize("nonce", [True, False], ids=["nonce", "no_nonce"])
def test_ocsp_certificate_hold_then_release(rp: RelyingParty, nonce: bool) -> None:
    leaf = rp.issue()
    text = ("-req_text", "-resp_text")

    revoke(rp, leaf.serial, Reason.certificateHold)
    held = rp.ocsp("-cert", leaf.pem.name, nonce=nonce, extra=text)
    assert_ocsp_status(held, "leaf.pem", "revoked", nonce=nonce)
    assert "Reason: certificateHold\n" in held.stdout, str(held)

    revocation.release(rp.container.pki, leaf.serial, "test")
    released = rp.ocsp("-cert", leaf.pem.name, nonce=nonce, extra=text)
    assert_ocsp_status(released, "leaf.pem", "good", nonce=nonce)
    assert "Reason:" not in released.stdout, str(released)


@pytest.mark.parametrize("nonce", [True, False], ids=["nonce", "no_nonce"])
def test_ocsp_with_sha256_cert_id(rp: RelyingParty, nonce: bool) -> None:
    """A CertID hashed with SHA-256 (not the RFC 5019 SHA-1) is answered with the same CertID."""
    leaf = rp.issue()
    result = rp.openssl("ocsp", "-issuer", rp.issuing_pem.name, "-sha256", "-cert", leaf.pem.name,
                        "-url", rp.url + "/ocsp", "-CAfile", rp.root_pem.name,
                        "-verify_other", rp.issuing_pem.name, "-req_text", "-resp_text",
                        *(() if nonce else ("-no_nonce",)))
    assert_ocsp_status(result, "leaf.pem", "good", nonce=nonce)
    assert result.stdout.count("Hash Algorithm: sha256") == 2, str(result)  # request and response
    assert "Hash Algorithm: sha1" not in result.stdout, str(result)


def test_ocsp_over_get_is_cacheable_and_verifies(rp: RelyingParty) -> None:
    leaf = rp.issue()
    made = rp.openssl("ocsp", "-issuer", rp.issuing_pem.name, "-cert", leaf.pem.name, "-no_nonce",
                      "-reqout", "req.der")
    assert made.returncode == 0, str(made)
    raw = base64.b64encode((rp.dir / "req.der").read_bytes()).decode()
    encoded = urllib.parse.quote(raw, safe="")

    response = rp.get(f"/ocsp/{encoded}")
    assert response.headers["content-type"] == "application/ocsp-response", response.headers
    cache_control = response.headers.get("cache-control", "")
    max_age = re.search(r"max-age=(\d+)", cache_control)
    assert max_age and int(max_age.group(1)) > 0, response.headers
    (rp.dir / "resp.der").write_bytes(response.content)
    # Some clients send the base64 without URL-encoding it; they get the same (cached) answer.
    assert rp.get(f"/ocsp/{raw}").content == response.content

    parsed = rp.openssl("ocsp", "-respin", "resp.der", "-resp_text", "-CAfile", rp.root_pem.name,
                        "-verify_other", rp.issuing_pem.name, "-issuer", rp.issuing_pem.name,
                        "-cert", leaf.pem.name, "-no_nonce")
    assert parsed.returncode == 0, str(parsed)
    assert "Response verify OK" in parsed.output, str(parsed)
    assert "OCSP Response Status: successful (0x0)" in parsed.stdout, str(parsed)
    assert "leaf.pem: good\n" in parsed.stdout, str(parsed)
    assert f"Serial Number: {openssl_serial(leaf.serial)}" in parsed.stdout, str(parsed)

    # The same request after a revocation: a fresh (not stale) answer over GET too.
    revoke(rp, leaf.serial, Reason.keyCompromise)
    (rp.dir / "resp2.der").write_bytes(rp.get(f"/ocsp/{encoded}").content)
    after = rp.openssl("ocsp", "-respin", "resp2.der", "-noverify", "-issuer", rp.issuing_pem.name,
                       "-cert", leaf.pem.name, "-no_nonce")
    assert after.returncode == 0, str(after)
    assert "leaf.pem: revoked\n" in after.stdout and "Reason: keyCompromise" in after.stdout, str(after)


def test_ocsp_for_the_issuing_ca_at_the_root_responder(rp: RelyingParty) -> None:
    """The root's own delegated responder answers for the issuing CA certificate."""
    query = ("ocsp", "-issuer", rp.root_pem.name, "-cert", rp.issuing_pem.name, "-url", rp.url + "/ocsp",
             "-CAfile", rp.root_pem.name)
    good = rp.openssl(*query)
    assert good.returncode == 0 and "Response verify OK" in good.output, str(good)
    assert "issuing.pem: good\n" in good.stdout, str(good)

    revoke_issuing_ca(rp, Reason.cACompromise)
    revoked = rp.openssl(*query)
    assert revoked.returncode == 0 and "Response verify OK" in revoked.output, str(revoked)
    assert "issuing.pem: revoked\n" in revoked.stdout, str(revoked)
    assert "Reason: cACompromise\n" in revoked.stdout, str(revoked)


def test_ocsp_unknown_serial_of_our_ca_is_unknown(rp: RelyingParty) -> None:
    serial = "0x" + secrets.token_hex(16)
    for nonce in (True, False):
        result = rp.ocsp("-serial", serial, nonce=nonce)
        assert result.returncode == 0, str(result)
        assert "Response verify OK" in result.output, str(result)
        assert f"{serial}: unknown\n" in result.stdout, str(result)


def test_ocsp_for_a_foreign_ca_is_unauthorized(rp: RelyingParty) -> None:
    leaf = rp.issue()  # the foreign leaf even reuses a serial kyso knows: only the issuer differs
    ca_pem, leaf_pem = foreign_ca_and_leaf(rp.dir, int(leaf.serial, 16))
    result = rp.openssl("ocsp", "-issuer", ca_pem.name, "-cert", leaf_pem.name, "-url", rp.url + "/ocsp",
                        "-CAfile", rp.root_pem.name)
    assert result.returncode != 0, str(result)
    assert "Responder Error: unauthorized (6)" in result.output, str(result)
    assert ": good" not in result.stdout and ": unknown" not in result.stdout, str(result)


# --- 3. openssl crl ----------------------------------------------------------------------------

def test_full_and_delta_crls_parse_and_verify(rp: RelyingParty, frozen: FrozenClock) -> None:
    # a delta lists what changed since its base's thisUpdate, and every revocation publishes both: with the
    # clock held, both revocations fall on the base's moment (a real clock made the leaf's entry depend on
    # whether a second ended between the two revocations, a flaky test)
    leaf, other = rp.issue("leaf"), rp.issue("other")
    revoke(rp, leaf.serial, Reason.keyCompromise)
    revoke(rp, other.serial, Reason.unspecified)
    full, delta = rp.crl_der(name="full"), rp.crl_der(delta=True, name="delta")

    full_text = rp.crl_text(full).stdout
    assert "X509v3 CRL Number" in full_text
    assert "Freshest CRL" not in full_text  # CRL-only relying parties need no delta (pki/crl.py)
    assert "Delta CRL Indicator" not in full_text
    # keyCompromise carries a reason code; unspecified is omitted, as RFC 5280 5.3.1 asks
    assert crl_entries(full_text) == {openssl_serial(leaf.serial): "Key Compromise",
                                      openssl_serial(other.serial): None}, full_text

    delta_text = rp.crl_text(delta).stdout
    assert "X509v3 CRL Number" in delta_text
    assert "X509v3 Delta CRL Indicator: critical" in delta_text
    assert "Freshest CRL" not in delta_text
    assert delta_base_number(delta_text) == crl_number(full_text)
    assert crl_number(delta_text) > crl_number(full_text)
    assert crl_entries(delta_text)[openssl_serial(leaf.serial)] == "Key Compromise", delta_text

    for crl in (full, delta):
        verified = rp.openssl("crl", "-inform", "DER", "-in", crl.name, "-noout", "-verify",
                              "-CAfile", rp.issuing_pem.name)
        assert verified.returncode == 0, str(verified)
        assert "verify OK" in verified.output, str(verified)
        wrong = rp.openssl("crl", "-inform", "DER", "-in", crl.name, "-noout", "-verify",
                           "-CAfile", rp.root_pem.name)
        assert wrong.returncode != 0 and "verify OK" not in wrong.output, str(wrong)


def test_release_from_hold_shows_remove_from_crl_in_the_delta(rp: RelyingParty) -> None:
    leaf = rp.issue()
    serial = openssl_serial(leaf.serial)

    revoke(rp, leaf.serial, Reason.certificateHold)
    held_full, held_delta = rp.crl_pem(name="held-full"), rp.crl_pem(delta=True, name="held-delta")
    held_text = rp.crl_text(rp.dir / "held-full.crl").stdout
    assert crl_entries(held_text) == {serial: "Certificate Hold"}, held_text
    on_hold = rp.verify(leaf, held_full, held_delta, extra=("-use_deltas",))
    assert on_hold.returncode != 0 and "certificate revoked" in on_hold.output, str(on_hold)

    revocation.release(rp.container.pki, leaf.serial, "test")
    full_pem, delta_pem = rp.crl_pem(name="full"), rp.crl_pem(delta=True, name="delta")
    full_text = rp.crl_text(rp.dir / "full.crl").stdout
    delta_text = rp.crl_text(rp.dir / "delta.crl").stdout
    assert "No Revoked Certificates." in full_text, full_text
    assert crl_number(full_text) > crl_number(held_text)
    assert delta_base_number(delta_text) == crl_number(full_text)
    assert crl_entries(delta_text) == {serial: "Remove From CRL"}, delta_text

    # openssl applies the delta (RFC 5280 5.2.4 / 5.3.1: removeFromCRL) and accepts the certificate
    released = rp.verify(leaf, full_pem, delta_pem, extra=("-use_deltas",))
    assert released.returncode == 0, str(released)
    assert released.stdout.strip() == "leaf.pem: OK", str(released)


# --- 4. openssl x509: CA certificate download and Vietnamese names -----------------------------

def test_issuing_ca_certificate_download_parses(rp: RelyingParty) -> None:
    response = rp.get(f"/ca/{ISSUING_CA}.crt")
    assert response.headers["content-type"] == "application/pkix-cert", response.headers
    (rp.dir / "issuing.crt").write_bytes(response.content)

    result = rp.openssl("x509", "-inform", "DER", "-in", "issuing.crt", "-noout", "-subject", "-issuer",
                        "-nameopt", "utf8,sep_comma_plus", "-fingerprint", "-sha256", "-ext", "basicConstraints")
    assert result.returncode == 0, str(result)
    assert "subject=C=VN,O=kyso thử nghiệm,CN=kyso Test Issuing CA\n" in result.stdout, str(result)
    assert "issuer=C=VN,O=kyso thử nghiệm,CN=kyso Test Root CA\n" in result.stdout, str(result)
    assert "CA:TRUE, pathlen:0" in result.stdout, str(result)
    expected = hashlib.sha256(ca_cert_der(rp.container, ISSUING_CA)).hexdigest().upper()
    fingerprint = re.search(r"Fingerprint=([0-9A-F:]+)", result.stdout)
    assert fingerprint and fingerprint.group(1).replace(":", "") == expected, str(result)


def test_leaf_urls_lead_a_relying_party_to_the_live_server(rp: RelyingParty) -> None:
    """AIA (caIssuers, OCSP) and CDP as openssl reads them point at working endpoints."""
    leaf = rp.issue()
    result = rp.openssl("x509", "-in", leaf.pem.name, "-noout", "-ocsp_uri", "-ext",
                        "authorityInfoAccess,crlDistributionPoints")
    assert result.returncode == 0, str(result)
    assert result.stdout.startswith(f"{rp.url}/ocsp\n"), str(result)
    ca_issuers = re.search(r"CA Issuers - URI:(\S+)", result.stdout)
    cdp = re.search(r"Full Name:\s*\n\s+URI:(\S+)", result.stdout)
    assert ca_issuers and ca_issuers.group(1) == f"{rp.url}/ca/{ISSUING_CA}.crt", str(result)
    assert cdp and cdp.group(1) == f"{rp.url}/crl/{ISSUING_CA}.crl", str(result)

    # Build the chain only from what the certificate says: fetch the issuer and the CRL it names.
    (rp.dir / "aia-issuer.der").write_bytes(rp.get(ca_issuers.group(1)).content)
    (rp.dir / "cdp.crl").write_bytes(rp.get(cdp.group(1)).content)
    for args in (("x509", "-inform", "DER", "-in", "aia-issuer.der", "-out", "aia-issuer.pem"),
                 ("crl", "-inform", "DER", "-in", "cdp.crl", "-out", "cdp.crl.pem")):
        converted = rp.openssl(*args)
        assert converted.returncode == 0, str(converted)
    verified = rp.openssl("verify", "-CAfile", rp.root_pem.name, "-untrusted", "aia-issuer.pem", "-crl_check",
                          "-CRLfile", "cdp.crl.pem", leaf.pem.name)
    assert verified.returncode == 0 and verified.stdout.strip() == "leaf.pem: OK", str(verified)


def test_vietnamese_names_round_trip_exactly(pki: Container, tmp_path: Path) -> None:
    # typed decomposed (NFD), as some keyboards produce it; kyso stores and openssl shows NFC
    name = unicodedata.normalize("NFD", "Nguyễn Thị Hoa")
    row = issue(pki, subject=factories.specialist(name=name), commune_code="00004")
    pem = write_cert_pem(tmp_path / "leaf.pem", row.der)

    result = openssl("x509", "-in", pem, "-noout", "-subject", "-nameopt", "utf8,sep_comma_plus")
    assert result.returncode == 0, str(result)
    subject = result.stdout.strip()
    assert subject.startswith("subject="), str(result)
    fields = dict(part.split("=", 1) for part in subject.removeprefix("subject=").split(","))
    assert fields["CN"] == "Nguyễn Thị Hoa" == unicodedata.normalize("NFC", name), subject
    assert fields["L"] == "Phường Ba Đình", subject
    assert fields["ST"] == "Thành phố Hà Nội", subject
    assert fields["O"] == "Ủy ban nhân dân Phường Ba Đình", subject
    assert fields["title"] == "Công chức Tư pháp - Hộ tịch", subject
    assert fields["serialNumber"] == "IDCVN-001190000001", subject
    assert fields["C"] == "VN", subject

    # string types: Vietnamese text in UTF8String, C and serialNumber in PrintableString
    typed = openssl("x509", "-in", pem, "-noout", "-subject", "-nameopt", "multiline,show_type,utf8,-esc_msb")
    assert typed.returncode == 0, str(typed)
    lines = {line.split("=")[0].strip(): line for line in typed.stdout.splitlines() if "=" in line}
    assert "PRINTABLESTRING:VN" in lines["countryName"], typed.stdout
    assert "PRINTABLESTRING:IDCVN-001190000001" in lines["serialNumber"], typed.stdout
    for attribute in ("commonName", "localityName", "stateOrProvinceName", "organizationName", "title"):
        assert "UTF8STRING:" in lines[attribute], typed.stdout
    assert "UTF8STRING:Nguyễn Thị Hoa" in lines["commonName"], typed.stdout
