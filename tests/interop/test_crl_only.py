"""Relying parties that check revocation by CRL alone (issue 15, item 9).

A specialist certificate is validated against kyso's CRLs only — no OCSP, no fetching, hard-fail —
by three independent validators, before and after its revocation:

- pyhanko-certvalidator (``revocation_mode="hard-fail"``, the CRLs given, fetching off);
- ``openssl verify -crl_check_all`` with ``-CRLfile``;
- NSS ``vfychain -pp`` with the CRLs imported by ``crlutil`` and the CRL method required for the
  whole chain (``-g chain -m crl -s failIfNoInfo``), the e-mail-signer usage (what PDF readers of
  the NSS family ask for).

Each validator is given exactly the full CRLs a relying party downloads from the certificates'
CRL distribution points (the issuing CA's for the leaf, the root's for the issuing CA).
"""
from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from asn1crypto import crl as asn1_crl, x509 as asn1_x509
from pyhanko_certvalidator import CertificateValidator, ValidationContext
from pyhanko_certvalidator.errors import PathValidationError, RevokedError

from api.container import Container
from core.db import transaction
from pki import crl, revocation, store
from pki.reasons import Reason
from tests.interop.helpers import ISSUING_CA, ROOT_CA, Run, ca_cert_der, issue, openssl, run, write_cert_pem
from tests.interop.pdf_tools import tool

pytestmark = pytest.mark.interop


class CrlOnly:
    """A relying party's folder: root (trusted), issuing CA, the leaf, and the CAs' current full CRLs."""

    def __init__(self, container: Container, directory: Path) -> None:
        self.container, self.dir = container, directory
        directory.mkdir(parents=True, exist_ok=True)
        self.root_der, self.issuing_der = ca_cert_der(container, ROOT_CA), ca_cert_der(container, ISSUING_CA)
        write_cert_pem(directory / "root.pem", self.root_der)
        write_cert_pem(directory / "issuing.pem", self.issuing_der)
        (directory / "issuing.der").write_bytes(self.issuing_der)
        self.leaf = issue(container)
        write_cert_pem(directory / "leaf.pem", self.leaf.der)
        (directory / "leaf.der").write_bytes(self.leaf.der)

    def full_crls(self, tag: str) -> list[Path]:
        paths = []
        with transaction(self.container.sessions) as session:
            for name in (ISSUING_CA, ROOT_CA):
                latest = crl.latest(session, store.get_ca(session, name), delta=False)
                assert latest is not None
                path = self.dir / f"{name}-{tag}.crl"
                path.write_bytes(latest.der)
                paths.append(path)
        return paths

    # -- the three validators ------------------------------------------------------------------
    def certvalidator(self, crls: list[Path]) -> str:
        """'ok', 'revoked', or certvalidator's message."""
        context = ValidationContext(
            trust_roots=[asn1_x509.Certificate.load(self.root_der)],
            other_certs=[asn1_x509.Certificate.load(self.issuing_der)],
            crls=[asn1_crl.CertificateList.load(p.read_bytes()) for p in crls], ocsps=[],
            allow_fetching=False, revocation_mode="hard-fail")
        validator = CertificateValidator(asn1_x509.Certificate.load(self.leaf.der), validation_context=context)
        try:
            asyncio.run(validator.async_validate_usage({"digital_signature"}))
        except RevokedError:
            return "revoked"
        except PathValidationError as exc:
            return str(exc)
        return "ok"

    def openssl(self, crls: list[Path]) -> Run:
        args = ["verify", "-crl_check_all", "-CAfile", "root.pem", "-untrusted", "issuing.pem"]
        for path in crls:
            args += ["-CRLfile", self._pem(path).name]
        return openssl(*args, "leaf.pem", cwd=self.dir)

    def _pem(self, der: Path) -> Path:
        pem = der.with_suffix(".crl.pem")
        result = openssl("crl", "-inform", "DER", "-in", der.name, "-out", pem.name, cwd=self.dir)
        assert result.returncode == 0, str(result)
        return pem

    def vfychain(self, crls: list[Path], tag: str, *, strict: bool) -> Run:
        """``strict``: the CRL method must give an answer for the leaf and the issuing CA
        (failIfNoInfo), which NSS reports as SEC_ERROR_REVOKED_CERTIFICATE (-8180) when it has none;
        lenient: no answer is accepted, so -8180 can only come from a CRL that lists the certificate."""
        certutil, crlutil = tool("certutil", "libnss3-tools"), tool("crlutil", "libnss3-tools")
        db = self.dir / f"nss-{tag}"
        db.mkdir()
        for argv in ([certutil, "-N", "-d", f"sql:{db}", "--empty-password"],
                     [certutil, "-A", "-d", f"sql:{db}", "-n", "root", "-t", "C,C,C", "-i", str(self.dir / "root.pem")],
                     *([crlutil, "-I", "-d", f"sql:{db}", "-t", "1", "-i", str(p), "-B"] for p in crls)):
            result = run(argv)
            assert result.returncode == 0, f"could not prepare the NSS database:\n{result}"
        method = ["-m", "crl", *(["-s", "failIfNoInfo"] if strict else [])]
        return run([tool("vfychain", "libnss3-tools"), "-d", f"sql:{db}", "-pp", "-u", "4",
                    "-g", "leaf", *method, "-g", "chain", *method,
                    str(self.dir / "leaf.der"), str(self.dir / "issuing.der")])


@pytest.fixture
def rp(pki: Container, tmp_path: Path) -> CrlOnly:
    return CrlOnly(pki, tmp_path / "relying-party")


def test_crl_only_validation_before_and_after_revocation(rp: CrlOnly) -> None:
    before = rp.full_crls("before")
    assert rp.certvalidator(before) == "ok"
    ossl = rp.openssl(before)
    assert ossl.returncode == 0 and ossl.stdout.strip() == "leaf.pem: OK", str(ossl)
    nss = rp.vfychain(before, "before", strict=True)
    assert nss.returncode == 0 and "Chain is good!" in nss.output, str(nss)
    without = rp.vfychain([], "no-crls", strict=True)  # the control: it was the CRLs that answered
    assert without.returncode != 0 and "Chain is bad!" in without.output, str(without)

    revocation.revoke(rp.container.pki, rp.leaf.serial, Reason.keyCompromise, "test")
    after = rp.full_crls("after")
    assert rp.certvalidator(after) == "revoked"
    ossl = rp.openssl(after)
    assert ossl.returncode != 0 and "error 23 at 0 depth lookup: certificate revoked" in ossl.output, str(ossl)
    nss = rp.vfychain(after, "after", strict=False)
    assert nss.returncode != 0 and "ERROR -8180: Peer's Certificate has been revoked." in nss.output, str(nss)
    stale = rp.vfychain(before, "stale", strict=False)  # the control: the old CRLs do not list it
    assert stale.returncode == 0 and "Chain is good!" in stale.output, str(stale)


def test_full_crls_carry_no_freshest_crl(rp: CrlOnly) -> None:
    """The reason certvalidator passes above: nothing sends it looking for a delta (pki/crl.py)."""
    for path in rp.full_crls("now"):
        assert asn1_crl.CertificateList.load(path.read_bytes()).freshest_crl_value is None
