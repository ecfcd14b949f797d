"""Helpers for the interop tests: run external tools, write PEM files, issue test certificates.

Every check here goes through a real subprocess (``openssl``, pkilint's ``lint_*`` commands);
``Run`` keeps the exit code and both output streams so a failing assertion shows exactly what
the tool said.
"""
from __future__ import annotations

import datetime as dt
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from api.container import Container
from core.db import transaction
from hsm import KeyType
from pki import issuance, store
from pki.models import Certificate
from pki.names import SubjectInfo
from tests import factories

TOOL_TIMEOUT = 120  # seconds; the machine may be busy with benchmarks
ROOT_CA, ISSUING_CA = "test-root", "test-issuing"


# --- running external tools -------------------------------------------------------------------

@dataclass(frozen=True)
class Run:
    """One finished external command."""

    argv: list[str]
    returncode: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr

    def __str__(self) -> str:  # used as the assertion message
        return (f"$ {shlex.join(self.argv)}\nexit code: {self.returncode}\n"
                f"--- stdout ---\n{self.stdout}\n--- stderr ---\n{self.stderr}")


def run(argv: list[str], cwd: Path | None = None) -> Run:
    proc = subprocess.run(argv, cwd=cwd, capture_output=True, timeout=TOOL_TIMEOUT)
    # surrogateescape: a tool printing bytes that are not UTF-8 cannot crash the test, it fails
    # the assertion that looks for the exact UTF-8 text instead.
    return Run(argv, proc.returncode, proc.stdout.decode("utf-8", "surrogateescape"),
               proc.stderr.decode("utf-8", "surrogateescape"))


def openssl_binary() -> str:
    path = shutil.which("openssl")
    if path is None:
        pytest.fail("the openssl command-line tool is required for the interop tests but is not on PATH")
    return path


def openssl(*args: str | Path, cwd: Path | None = None) -> Run:
    return run([openssl_binary(), *map(str, args)], cwd=cwd)


def pkilint_binary(tool: str) -> str:
    """A pkilint command from this virtualenv (next to the running Python), else from PATH."""
    candidate = Path(sys.executable).parent / tool
    if candidate.exists():
        return str(candidate)
    path = shutil.which(tool)
    if path is None:
        pytest.fail(f"pkilint's {tool} is required for the interop tests; install the 'test' extra")
    return path


def pkilint(tool: str, *args: str | Path) -> Run:
    return run([pkilint_binary(tool), *map(str, args)])


def assert_lint_clean(result: Run) -> None:
    """pkilint's exit code is the number of findings at or above the threshold."""
    assert result.returncode == 0, f"pkilint reported findings:\n{result}"
    assert "(ERROR)" not in result.output and "(FATAL)" not in result.output, str(result)


# --- files ------------------------------------------------------------------------------------

def write_cert_pem(path: Path, der: bytes) -> Path:
    path.write_bytes(x509.load_der_x509_certificate(der).public_bytes(serialization.Encoding.PEM))
    return path


def openssl_serial(serial_hex: str) -> str:
    """A serial as openssl prints it in CRL and OCSP text: upper-case hex, whole bytes."""
    value = serial_hex.upper()
    return value if len(value) % 2 == 0 else "0" + value


# --- the PKI under test -----------------------------------------------------------------------

def ca_cert_der(container: Container, name: str) -> bytes:
    with transaction(container.sessions) as session:
        der = store.get_ca(session, name).cert_der
    assert der is not None, f"CA {name} has no certificate"
    return der


def responder_cert_der(container: Container, ca_name: str) -> bytes:
    """The delegated OCSP responder certificate of a CA (its serial is on the CA row)."""
    with transaction(container.sessions) as session:
        ca = store.get_ca(session, ca_name)
        assert ca.ocsp_responder_serial, f"CA {ca_name} has no OCSP responder"
        return store.get_certificate(session, ca.ocsp_responder_serial).der


def issue(container: Container, profile: str = "specialist", subject: SubjectInfo | None = None,
          commune_code: str | None = "00004", key_type: KeyType | None = None) -> Certificate:
    request = issuance.IssueRequest(profile=profile, subject=subject or factories.specialist(),
                                    commune_code=commune_code, key_type=key_type)
    return issuance.issue(container.pki, request, actor="test").certificate


def foreign_ca_and_leaf(directory: Path, serial: int) -> tuple[Path, Path]:
    """A CA kyso has never seen (made with cryptography) and a leaf it issued, as PEM files."""
    now = dt.datetime.now(dt.UTC)
    ca_key, leaf_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COUNTRY_NAME, "VN"),
                         x509.NameAttribute(NameOID.COMMON_NAME, "Foreign Test CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
          .not_valid_after(now + dt.timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
          .sign(ca_key, hashes.SHA256()))
    leaf = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Foreign leaf")]))
            .issuer_name(ca_name).public_key(leaf_key.public_key()).serial_number(serial)
            .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=1))
            .sign(ca_key, hashes.SHA256()))
    ca_pem, leaf_pem = directory / "foreign-ca.pem", directory / "foreign-leaf.pem"
    ca_pem.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    leaf_pem.write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    return ca_pem, leaf_pem


# --- parsing openssl's text output --------------------------------------------------------------

def crl_number(text: str) -> int:
    match = re.search(r"X509v3 CRL Number: *\n\s+(\d+)", text)
    assert match, f"no CRL Number in:\n{text}"
    return int(match.group(1))


def delta_base_number(text: str) -> int:
    match = re.search(r"X509v3 Delta CRL Indicator: critical *\n\s+(\d+)", text)
    assert match, f"no critical Delta CRL Indicator in:\n{text}"
    return int(match.group(1))


def crl_entries(text: str) -> dict[str, str | None]:
    """Revoked serials -> the reason openssl prints for them (None when the entry has none)."""
    pattern = re.compile(r"Serial Number: ([0-9A-F]+)\n\s+Revocation Date: [^\n]+\n"
                         r"(?:\s+CRL entry extensions:\n\s+X509v3 CRL Reason Code: *\n\s+([^\n]+)\n)?")
    return {serial: (reason.strip() if reason else None) for serial, reason in pattern.findall(text)}


def ocsp_nonces(text: str) -> list[str]:
    """The OCSP Nonce values in -req_text / -resp_text output, in order of appearance."""
    return re.findall(r"OCSP Nonce: *\n\s+([0-9A-F]+)", text)


# --- a relying party talking to a live kyso server ----------------------------------------------

@dataclass(frozen=True)
class Leaf:
    row: Certificate
    pem: Path

    @property
    def serial(self) -> str:
        return self.row.serial


class RelyingParty:
    """What a relying party has: the trust anchor, the issuing CA and the server's URLs.

    Files live in ``directory``; openssl runs there so its output names files, not full paths.
    """

    def __init__(self, container: Container, url: str, directory: Path) -> None:
        self.container, self.url, self.dir = container, url, directory
        directory.mkdir(parents=True, exist_ok=True)
        self.root_pem = write_cert_pem(directory / "root.pem", ca_cert_der(container, ROOT_CA))
        self.issuing_pem = write_cert_pem(directory / "issuing.pem", ca_cert_der(container, ISSUING_CA))

    def openssl(self, *args: str | Path) -> Run:
        return openssl(*args, cwd=self.dir)

    def issue(self, name: str = "leaf", **kwargs: object) -> Leaf:
        row = issue(self.container, **kwargs)  # type: ignore[arg-type]
        return Leaf(row, write_cert_pem(self.dir / f"{name}.pem", row.der))

    def serial_of(self, pem: Path) -> str:
        """A certificate's serial as openssl reads it, in kyso's form (upper-case hex, no leading 0)."""
        result = self.openssl("x509", "-in", pem.name, "-noout", "-serial")
        assert result.returncode == 0, str(result)
        return format(int(result.stdout.strip().removeprefix("serial="), 16), "X")

    def get(self, path_or_url: str) -> httpx.Response:
        url = path_or_url if path_or_url.startswith("http") else self.url + path_or_url
        response = httpx.get(url, timeout=30)
        assert response.status_code == 200, f"GET {url}: {response.status_code} {response.text[:500]}"
        return response

    def crl_der(self, ca: str = ISSUING_CA, *, delta: bool = False, name: str | None = None) -> Path:
        """The CA's current full (or delta) CRL, fetched over HTTP, as a DER file."""
        response = self.get(f"/crl/{ca}{'-delta' if delta else ''}.crl")
        assert response.headers["content-type"] == "application/pkix-crl", response.headers
        path = self.dir / f"{name or ca + ('-delta' if delta else '')}.crl"
        path.write_bytes(response.content)
        return path

    def crl_pem(self, ca: str = ISSUING_CA, *, delta: bool = False, name: str | None = None) -> Path:
        """As ``crl_der``, converted to PEM by ``openssl crl -inform DER`` (which also parses it)."""
        der = self.crl_der(ca, delta=delta, name=name)
        pem = der.with_suffix(".crl.pem")
        result = self.openssl("crl", "-inform", "DER", "-in", der.name, "-out", pem.name)
        assert result.returncode == 0, str(result)
        assert pem.read_text().startswith("-----BEGIN X509 CRL-----"), pem.read_text()
        return pem

    def crl_text(self, der: Path) -> Run:
        result = self.openssl("crl", "-inform", "DER", "-in", der.name, "-noout", "-text")
        assert result.returncode == 0, str(result)
        return result

    def verify(self, leaf: Leaf, *crls: Path, check_all: bool = False, extra: tuple[str, ...] = ()) -> Run:
        args = ["verify", "-CAfile", self.root_pem.name, "-untrusted", self.issuing_pem.name,
                "-crl_check_all" if check_all else "-crl_check", *extra]
        for crl in crls:
            args += ["-CRLfile", crl.name]
        return self.openssl(*args, leaf.pem.name)

    def ocsp(self, *target: str, nonce: bool = True, extra: tuple[str, ...] = ()) -> Run:
        """``openssl ocsp`` against the live responder; ``target`` is e.g. ("-cert", "leaf.pem")."""
        return self.openssl("ocsp", "-issuer", self.issuing_pem.name, *target, "-url", self.url + "/ocsp",
                            "-CAfile", self.root_pem.name, "-verify_other", self.issuing_pem.name,
                            *(() if nonce else ("-no_nonce",)), *extra)
