"""Nothing kyso cannot verify leaves kyso: damaged inputs are repaired (unsigned) or refused (no pages, a
page tree that is not one, a signed file that would need repair), and kyso checks its own output before
registering it. Every repaired file that kyso signs passes ``qpdf --check`` and kyso's own verifier."""
from __future__ import annotations

import dataclasses
import hashlib
import json
import shutil
import subprocess
from pathlib import Path

import pytest
from sqlalchemy import select

from api.container import Container
from core.audit import AuditEntry
from core.db import transaction
from core.errors import InvalidInput
from signing.create import intake, selfcheck
from signing.create.service import SigningService
from signing.errors import PdfNoPages, PdfPageTreeBroken, SelfCheckFailed, SignedPdfDamaged
from signing.registry import versions
from signing.registry.blobs import PrefixDigest, store_for
from signing.registry.models import DocumentFile, StorageKind
from tests.helpers import damaged
from tests.helpers.signing import CONSENTED, CORPUS, documents, issue_credential, request

SHARED_CORPUS = Path("/work/shared/corpus/pdfs")


def qpdf_check(pdf: bytes, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    qpdf = shutil.which("qpdf")
    assert qpdf, "qpdf is needed to check kyso's output the way relying parties' tools do"
    path = tmp_path / "checked.pdf"
    path.write_bytes(pdf)
    return subprocess.run([qpdf, "--check", str(path)], capture_output=True, text=True, timeout=60)


def actions(container: Container, action: str) -> list[AuditEntry]:
    with transaction(container.sessions) as session:
        rows = session.execute(select(AuditEntry).where(AuditEntry.action == action)).scalars().all()
        for row in rows:
            session.expunge(row)
        return list(rows)


@pytest.mark.parametrize("damage,error,code", [
    (damaged.null_page_tree, PdfNoPages, "pdf_no_pages"),
    (damaged.empty_page_tree, PdfNoPages, "pdf_no_pages"),
    (damaged.font_as_page, PdfPageTreeBroken, "pdf_page_tree_broken"),
])
def test_no_usable_page_tree_is_refused(pki: Container, specialist: str, sample_pdf: bytes, damage, error: type,  # type: ignore[no-untyped-def]
                                        code: str) -> None:
    bad = damage(sample_pdf)
    with pytest.raises(error) as caught:
        pki.signing.sign(request(bad, specialist, "B-T"), actor="test", activation=CONSENTED)
    assert caught.value.code == code and isinstance(caught.value, InvalidInput)
    assert documents(pki) == 0 and actions(pki, "signing:document:sign") == []


@pytest.mark.parametrize("damage", [damaged.shifted_offsets, damaged.stale_startxref])
def test_broken_xref_is_repaired_then_signed_and_verifies(pki: Container, specialist: str, sample_pdf: bytes,
                                                           damage, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    bad = damage(sample_pdf)
    assert qpdf_check(bad, tmp_path).returncode != 0, "the crafted file must really be damaged"
    result = pki.signing.sign(request(bad, specialist, "B-LT"), actor="test", activation=CONSENTED)
    checked = qpdf_check(result.pdf, tmp_path)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    report = pki.verifier.verify(result.pdf)
    [signature] = report.signatures
    assert signature.indication == "TOTAL-PASSED" and signature.intact
    assert report.genuine, report.summary
    [repair] = actions(pki, "signing:document:repair")
    assert repair.subject == result.document_id


def test_a_signed_file_needing_repair_is_refused_not_rebuilt(pki: Container, specialist: str,
                                                            sample_pdf: bytes) -> None:
    """Rebuilding a signed file would break its signature: refused, nothing registered beyond the first."""
    first = pki.signing.sign(request(sample_pdf, specialist, "B-T"), actor="test", activation=CONSENTED)
    broken = damaged.stale_startxref(first.pdf)
    with pytest.raises(SignedPdfDamaged) as caught:
        pki.signing.sign(request(broken, specialist, "B-T"), actor="test", activation=CONSENTED)
    assert caught.value.code == "signed_pdf_damaged"
    assert documents(pki) == 1 and len(actions(pki, "signing:document:sign")) == 1


def test_corpus_files_needing_repair_are_signed_soundly(pki: Container, specialist: str, tmp_path: Path) -> None:
    """Of the shared corpus, ``qpdf --check`` finds cyclic-toc.pdf's xref in need of reconstruction (its
    trailer lacks /Size): kyso repairs it, signs it, and the result is sound."""
    source = (SHARED_CORPUS if SHARED_CORPUS.is_dir() else CORPUS) / "cyclic-toc.pdf"
    original = source.read_bytes()
    assert qpdf_check(original, tmp_path).returncode != 0
    prepared = intake.prepare(original)
    assert prepared.was_repaired and "/Size" in prepared.repaired[0]
    result = pki.signing.sign(request(original, specialist, "B-T"), actor="test", activation=CONSENTED)
    checked = qpdf_check(result.pdf, tmp_path)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    [signature] = pki.verifier.verify(result.pdf).signatures
    assert signature.intact and signature.indication == "TOTAL-PASSED"


def test_sound_files_are_signed_as_they_are(sample_pdf: bytes) -> None:
    """The hot path: a sound file is neither rebuilt nor copied."""
    prepared = intake.prepare(sample_pdf)
    assert prepared.pdf is sample_pdf and not prepared.was_repaired


# -- kyso's check of its own output ------------------------------------------------------------------------

def test_self_check_catches_what_a_verifier_would(pki: Container, specialist: str, sample_pdf: bytes) -> None:
    result = pki.signing.sign(request(sample_pdf, specialist, "B-LTA"), actor="test", activation=CONSENTED)
    material = pki.signing.material.signer(specialist)
    selfcheck.check_output(result.pdf, sample_pdf, material.certificate)  # sound: no error

    def fails(pdf: bytes, source: bytes = sample_pdf, certificate=material.certificate) -> str:  # type: ignore[no-untyped-def]
        checks = set()
        # the SHA-256 state of the input the service hands over changes nothing: each failure is still found
        for digest in (None, PrefixDigest(source), PrefixDigest(sample_pdf)):
            with pytest.raises(SelfCheckFailed) as caught:
                selfcheck.check_output(pdf, source, certificate, source_digest=digest)
            assert caught.value.code == "signing_self_check_failed"
            checks.add(str(caught.value.details["check"]))
        [check] = checks
        return check

    assert b"ReportLab Generated" in result.pdf[:200]
    tampered = result.pdf.replace(b"ReportLab Generated", b"ReportLeb Generated", 1)  # inside every byte range
    assert fails(tampered, tampered[:len(sample_pdf)]) in ("integrity", "timestamp")
    assert fails(result.pdf + b"\n% appended after the archive timestamp\n") == "coverage"
    other = issue_credential(pki, name="Trần Văn Bình", id_number="001190000003")
    assert fails(result.pdf, certificate=pki.signing.material.signer(other).certificate) == "signer"
    assert fails(result.pdf, source=sample_pdf + b" ") == "prefix"
    # a state over bytes other than the source is not used: the byte ranges are hashed from the output itself
    assert selfcheck.check_output(result.pdf, sample_pdf, material.certificate,
                                  source_digest=PrefixDigest(sample_pdf + b"x")) == \
        selfcheck.check_output(result.pdf, sample_pdf, material.certificate, source_digest=PrefixDigest(sample_pdf))


def test_prefix_digest_continues_only_over_its_own_bytes(sample_pdf: bytes) -> None:
    """The input's SHA-256 state names an output only when the output starts with those very bytes."""
    known = PrefixDigest(sample_pdf)
    assert known.hexdigest == hashlib.sha256(sample_pdf).hexdigest()
    for longer in (sample_pdf + b"\n% appended\n", sample_pdf, b"x" + sample_pdf, sample_pdf[:-1] + b"!\n",
                   sample_pdf[:100], b""):
        assert known.of(longer) == hashlib.sha256(longer).hexdigest()
    assert known.of(sample_pdf + b"tail") == known.of(sample_pdf + b"tail")  # the kept state is not advanced


@pytest.mark.parametrize("damage", [None, damaged.stale_startxref])
def test_digests_audited_and_stored_are_those_of_the_bytes(pki: Container, specialist: str, sample_pdf: bytes,
                                                           damage) -> None:  # type: ignore[no-untyped-def]
    """The input is hashed once and its state reused: every digest kyso records is still the SHA-256 of the
    bytes it names (the input as received, its repaired copy, the signed output, the stored blob)."""
    pdf = damage(sample_pdf) if damage else sample_pdf
    result = pki.signing.sign(request(pdf, specialist, "B-B"), actor="test", activation=CONSENTED)
    assert result.sha256 == hashlib.sha256(result.pdf).hexdigest()
    [signed] = actions(pki, "signing:document:sign")
    details = json.loads(signed.details)
    assert details["input_sha256"] == hashlib.sha256(pdf).hexdigest()
    assert details["sha256"] == result.sha256
    repairs = actions(pki, "signing:document:repair")
    if damage:
        [repair] = repairs
        repaired = json.loads(repair.details)
        assert repaired["input_sha256"] == hashlib.sha256(pdf).hexdigest()
        assert repaired["repaired_sha256"] != repaired["input_sha256"]
        rebuilt = result.pdf[:result.pdf.index(b"%%EOF\n") + 6]  # qpdf's rebuild: one revision, then kyso's
        assert repaired["repaired_sha256"] == hashlib.sha256(rebuilt).hexdigest()
    else:
        assert repairs == []
    with transaction(pki.sessions) as session:
        [row] = session.execute(select(DocumentFile)).scalars().all()
        assert (row.storage, row.blob_sha256, row.sha256) == (StorageKind.WHOLE, result.sha256, result.sha256)
        assert versions.read(session, store_for(pki.settings), row) == result.pdf  # the blob hashes to its name
    assert pki.signing.check_input(result.pdf).pdf == result.pdf  # found again by its digest: the current version


def test_a_failed_self_check_registers_nothing_and_is_audited(pki: Container, specialist: str, sample_pdf: bytes,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """Fault injection: the signed bytes are altered between signing and registering, as a bug in kyso's
    signing path would alter them."""
    original = SigningService._sign_bytes

    def corrupting(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        pdf, reached, new_page = original(self, *args, **kwargs)
        return pdf.replace(b"ReportLab Generated", b"ReportLeb Generated", 1), reached, new_page

    monkeypatch.setattr(SigningService, "_sign_bytes", corrupting)
    with pytest.raises(SelfCheckFailed):
        pki.signing.sign(request(sample_pdf, specialist, "B-T"), actor="token:civil-reg", activation=CONSENTED)
    assert documents(pki) == 0 and actions(pki, "signing:document:sign") == []
    [entry] = actions(pki, "signing:document:self_check_failed")
    assert entry.actor == "token:civil-reg"


def test_size_limit_and_registry_state_apply_to_check_input(pki: Container, specialist: str, sample_pdf: bytes) -> None:
    """``check_input`` (used when a signing request is submitted) refuses what ``sign`` would about the file."""
    assert pki.signing.check_input(sample_pdf).pdf == sample_pdf
    small = SigningService(dataclasses.replace(pki.pki, settings=pki.settings.model_copy(update={"max_pdf_bytes": 1024})))
    with pytest.raises(InvalidInput, match="limit"):
        small.check_input(sample_pdf)
    with pytest.raises(PdfNoPages):
        pki.signing.check_input(damaged.null_page_tree(sample_pdf))
