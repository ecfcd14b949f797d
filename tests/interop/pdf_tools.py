"""PDF validators nobody here wrote, driven as subprocesses: poppler's ``pdfsig`` (NSS) and ``qpdf``;
plus pyHanko's validator in process, as a third opinion.

``pdfsig`` runs with the trust shim of ``tests/interop/pdfsig_shim`` preloaded (poppler 22.12 misreads
NSS's verdict otherwise, see its README), against an NSS database that trusts only the test root.
The shim runs with ``SHIM_DEBUG=1``: it prints NSS's own verdict (return value and error name) on
stderr, which the parsed report keeps, so a failed trust check says *why* NSS refused.

pdfsig exits 0 whatever it finds, so everything here parses its output.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from io import BytesIO
from pathlib import Path

import pytest
from asn1crypto import pem, x509 as asn1_x509
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.validation import DocumentSecurityStore, validate_pdf_timestamp

from tests.helpers.validation import Verdict, validate_all
from tests.interop.helpers import TOOL_TIMEOUT, Run, run

SHIM_DIR = Path(__file__).resolve().parent / "pdfsig_shim"
VALID = "Signature is Valid."
TRUSTED = "Certificate is Trusted."
REVOKED = "Certificate has been Revoked."
QPDF_CLEAN = "No syntax or stream encoding errors"
# poppler 22.12 cannot check RFC 3161 document timestamps (SubFilter /ETSI.RFC3161); it says so:
UNIMPLEMENTED = "Unable to validate this type of signature"


def tool(name: str, package: str) -> str:
    """An external tool on PATH; its absence fails the test (the suite must not pass without it)."""
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"`{name}` is required for the PDF interop tests but is not on PATH "
                    f"(Debian package {package}; scripts/install-system-deps.sh --test installs it)")
    return path


# --- qpdf ---------------------------------------------------------------------------------------

def qpdf_check(pdf: Path) -> Run:
    return run([tool("qpdf", "qpdf"), "--check", str(pdf)])


def assert_qpdf_clean(pdf: Path) -> None:
    result = qpdf_check(pdf)
    assert result.returncode == 0 and QPDF_CLEAN in result.stdout, f"qpdf --check failed:\n{result}"


# --- pdfsig -------------------------------------------------------------------------------------

def build_shim(directory: Path) -> Path:
    """Compile the trust shim (gcc, libnss3-dev, libnspr4-dev) into ``directory``."""
    tool("gcc", "gcc")
    out = directory / "nss_clear_stale_error.so"
    result = run(["bash", str(SHIM_DIR / "build.sh"), str(out)])
    assert result.returncode == 0 and out.exists(), f"the pdfsig trust shim did not build:\n{result}"
    return out


@dataclass(frozen=True)
class PdfSigSignature:
    """One ``Signature #n:`` block of pdfsig's output."""

    number: int
    fields: dict[str, str]
    flags: tuple[str, ...]  # lines without "key: value", e.g. "Total document signed"

    @property
    def field_name(self) -> str:
        return self.fields.get("Signature Field Name", "")

    @property
    def signature(self) -> str | None:
        return self.fields.get("Signature Validation")

    @property
    def certificate(self) -> str | None:
        return self.fields.get("Certificate Validation")

    @property
    def is_document_timestamp(self) -> bool:
        return self.fields.get("Signature Type") in ("ETSI.RFC3161", "unknown")


@dataclass(frozen=True)
class PdfSigReport:
    run: Run
    signatures: tuple[PdfSigSignature, ...]
    nss_verdicts: tuple[str, ...] = field(default=())  # the shim's debug lines: NSS's real answer

    def __str__(self) -> str:
        return str(self.run)

    @property
    def regular(self) -> list[PdfSigSignature]:
        return [s for s in self.signatures if not s.is_document_timestamp]

    @property
    def timestamps(self) -> list[PdfSigSignature]:
        return [s for s in self.signatures if s.is_document_timestamp]


_BLOCK = re.compile(r"^Signature #(\d+):\s*$")
_ITEM = re.compile(r"^\s+- (.*?)\s*$")


def parse_pdfsig(result: Run) -> PdfSigReport:
    blocks: list[PdfSigSignature] = []
    number, fields, flags = None, {}, []  # type: ignore[var-annotated]
    for line in result.stdout.splitlines():
        head = _BLOCK.match(line)
        if head:
            if number is not None:
                blocks.append(PdfSigSignature(number, fields, tuple(flags)))
            number, fields, flags = int(head.group(1)), {}, []
            continue
        item = _ITEM.match(line)
        if item and number is not None:
            key, sep, value = item.group(1).partition(": ")
            if sep:
                fields[key] = value.strip()
            else:
                flags.append(item.group(1))
    if number is not None:
        blocks.append(PdfSigSignature(number, fields, tuple(flags)))
    verdicts = tuple(line for line in result.stderr.splitlines() if "CERT_PKIXVerifyCert" in line)
    return PdfSigReport(result, tuple(blocks), verdicts)


class PdfSig:
    """pdfsig with an NSS database in ``directory`` that trusts exactly one root (trust ``C,C,C``:
    pdfsig checks the certificate for the e-mail-signer usage, ``C,,`` is not enough)."""

    def __init__(self, shim: Path, directory: Path, root_pem: bytes) -> None:
        self.shim, self.dir = shim, directory
        self.binary = tool("pdfsig", "poppler-utils")
        certutil = tool("certutil", "libnss3-tools")
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "root.pem").write_bytes(root_pem)
        for argv in ([certutil, "-N", "-d", f"sql:{directory}", "--empty-password"],
                     [certutil, "-A", "-d", f"sql:{directory}", "-n", "kyso-test-root", "-t", "C,C,C",
                      "-i", str(directory / "root.pem")]):
            result = run(argv)
            assert result.returncode == 0, f"could not prepare the NSS database:\n{result}"

    def check(self, pdf: Path) -> PdfSigReport:
        argv = [self.binary, "-nssdir", f"sql:{self.dir}", str(pdf)]
        env = {**os.environ, "LD_PRELOAD": str(self.shim), "SHIM_DEBUG": "1"}
        proc = subprocess.run(argv, capture_output=True, timeout=TOOL_TIMEOUT, env=env, check=False)
        result = Run(argv, proc.returncode, proc.stdout.decode("utf-8", "surrogateescape"),
                     proc.stderr.decode("utf-8", "surrogateescape"))
        report = parse_pdfsig(result)
        assert report.signatures, f"pdfsig found no signature:\n{result}"
        return report


def assert_pdfsig_valid_and_trusted(report: PdfSigReport, *, signatures: int, timestamps: int = 0) -> None:
    """Every real signature valid and its certificate trusted; document timestamps (which pdfsig
    22.12 cannot check: "Unimplemented Feature") only counted and recognised."""
    assert len(report.regular) == signatures, f"expected {signatures} signature(s):\n{report}"
    assert len(report.timestamps) == timestamps, f"expected {timestamps} document timestamp(s):\n{report}"
    for sig in report.regular:
        assert sig.signature == VALID, f"signature #{sig.number} ({sig.field_name}):\n{report}"
        assert sig.certificate == TRUSTED, (f"signature #{sig.number} ({sig.field_name}) not trusted; NSS said "
                                            f"{list(report.nss_verdicts)}:\n{report}")
    for sig in report.timestamps:
        assert UNIMPLEMENTED in report.run.output, str(report)


# --- pyHanko ------------------------------------------------------------------------------------

def pyhanko_verdicts(pdf: bytes, root_pem: bytes, *, ltv: bool) -> list[Verdict]:
    """pyHanko's verdict on every signature: B-LT/B-LTA hard-fail from the file's own DSS, no fetching;
    B-B/B-T offline with soft-fail (no revocation data in the file, fetching off)."""
    return validate_all(pdf, root_pem, ltv=ltv)


def assert_pyhanko_ok(pdf: bytes, root_pem: bytes, *, ltv: bool, signatures: int, timestamped: bool,
                      later_signatures_ok: bool = False) -> list[Verdict]:
    """Intact, valid, trusted; only validation-data / timestamp updates after a signature (and, when
    ``later_signatures_ok``, the FORM_FILLING level a later signature puts on an earlier one)."""
    allowed = {"NONE", "LTA_UPDATES"} | ({"FORM_FILLING"} if later_signatures_ok else set())
    verdicts = pyhanko_verdicts(pdf, root_pem, ltv=ltv)
    assert len(verdicts) == signatures, verdicts
    for v in verdicts:
        assert v.intact and v.valid and v.trusted and v.bottom_line, v
        assert v.modification_level in allowed, v
        assert v.docmdp_ok is not False, v
        if timestamped:
            assert v.timestamp_valid is True, v
    return verdicts


def assert_document_timestamps_ok(pdf: bytes, root_pem: bytes, expected: int) -> None:
    """pyHanko checks what pdfsig cannot: each document timestamp, hard-fail from the DSS."""
    reader = PdfFileReader(BytesIO(pdf))
    timestamps = reader.embedded_timestamp_signatures
    assert len(timestamps) == expected, [t.field_name for t in timestamps]
    if not timestamps:
        return
    root = asn1_x509.Certificate.load(pem.unarmor(root_pem)[2])
    context = DocumentSecurityStore.read_dss(reader).as_validation_context(
        {"trust_roots": [root], "allow_fetching": False, "revocation_mode": "hard-fail"})
    for ts in timestamps:
        status = validate_pdf_timestamp(ts, validation_context=context)
        assert status.intact and status.valid and status.trusted, status.pretty_print_details()


__all__ = [
    "QPDF_CLEAN", "REVOKED", "TRUSTED", "UNIMPLEMENTED", "VALID", "PdfSig", "PdfSigReport", "PdfSigSignature",
    "assert_document_timestamps_ok", "assert_pdfsig_valid_and_trusted", "assert_pyhanko_ok", "assert_qpdf_clean",
    "build_shim", "parse_pdfsig", "pyhanko_verdicts", "qpdf_check", "tool",
]
