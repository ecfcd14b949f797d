"""Figure 7: documents verified per second, kyso beside raw pyHanko validation of the same files.

Documents: the 1-page sample signed by one kyso specialist credential (EC P-256), distinct files
(each signed separately), at B-B and at B-LT (kyso's timestamp and DSS). kyso:
``container.verifier.verify`` — every signature's integrity, chain, revocation (kyso's own data),
timestamp, coverage and level, plus the registry lookup — with warm caches (the steady state of a
busy service: the same signers' chains seen before) and cold (every cache emptied before each
document: material, chain results, trust store, name comparisons). Raw: pyHanko 0.38's
``validate_pdf_signature`` with a fresh ``ValidationContext`` per file, as PERFORMANCE.md measured
it — B-B: the kyso root as trust root, soft-fail (the file carries no revocation data); B-LT: the
file's DSS, hard-fail, no fetching — and run with kyso's library speed-ups switched off
(``signing.speedups.disabled``), so the baseline is the libraries as shipped.
"""
from __future__ import annotations

from io import BytesIO
from typing import Any, Callable

from asn1crypto import x509 as asn1_x509

from .common import Figure, Profiler, Results, interleaved_rates, new_instance, say, workdir

TARGET_WARM = 3.0
SECTION = "7. verification in process (1 page, EC P-256)"


def run(results: Results, *, n_docs: int, repeats: int, profiler: Profiler) -> None:
    say(f"[7] verification: {n_docs} distinct documents per level, {repeats} interleaved rounds")
    with workdir("kyso-bench-verify-") as folder:
        inst = new_instance(folder, "sqlite")
        try:
            _measure(results, inst, n_docs, repeats, profiler)
        finally:
            inst.close()


def _documents(inst, n: int) -> tuple[dict[str, list[bytes]], asn1_x509.Certificate]:  # type: ignore[no-untyped-def]
    from core.db import transaction
    from pki.issuance import IssueRequest, issue
    from pki.names import SubjectInfo
    from pki.store import get_ca
    from signing.sample import sample_document
    from signing.service import AppearanceOptions, SignRequest
    from tests.conftest import ROOT

    container = inst.container
    subject = SubjectInfo(common_name="Nguyễn Thị Hoa", title="Công chức Tư pháp - Hộ tịch", id_number="001190000077")
    credential = issue(container.pki, IssueRequest(profile="specialist", subject=subject, commune_code="00004"),
                       "bench").credential_id
    pdf = sample_document(container.settings.stamp_font)
    docs: dict[str, list[bytes]] = {}
    for level in ("B-B", "B-LT"):
        docs[level] = [container.signing.sign(SignRequest(
            pdf=pdf, document_type="dossier-result", commune_code="00004", credential_id=credential,  # type: ignore[arg-type]
            level=level, dossier_number=f"HS-{level}-{i}", appearance=AppearanceOptions(visible=False)),  # type: ignore[arg-type]
            actor="bench").pdf for i in range(n)]
    with transaction(container.sessions) as session:
        root = asn1_x509.Certificate.load(get_ca(session, ROOT.name).cert_der)
    return docs, root


def raw_validate(level: str, root: asn1_x509.Certificate) -> Callable[[bytes], Any]:
    from pyhanko.pdf_utils.reader import PdfFileReader
    from pyhanko.sign.validation import DocumentSecurityStore, validate_pdf_signature
    from pyhanko_certvalidator import ValidationContext

    from signing import speedups

    def one(pdf: bytes) -> None:
        with speedups.disabled():
            reader = PdfFileReader(BytesIO(pdf))
            sig = reader.embedded_regular_signatures[0]
            if level == "B-LT":
                context = DocumentSecurityStore.read_dss(reader).as_validation_context(
                    {"trust_roots": [root], "allow_fetching": False, "revocation_mode": "hard-fail"})
            else:
                context = ValidationContext(trust_roots=[root], allow_fetching=False, revocation_mode="soft-fail")
            status = validate_pdf_signature(sig, context, ts_validation_context=context)
            assert status.bottom_line, status.pretty_print_details()

    return one


def _cold(container) -> None:  # type: ignore[no-untyped-def]
    from signing import pdf_facts, speedups

    container.signing.material.clear()
    container.verifier.chains.clear()
    container.verifier.trust.clear()
    speedups._equal.clear()
    pdf_facts.CERT_INFO.clear()


def _measure(results: Results, inst, n: int, repeats: int, profiler: Profiler) -> None:  # type: ignore[no-untyped-def]
    container = inst.container
    docs, root = _documents(inst, n)
    verifier = container.verifier
    for level in ("B-B", "B-LT"):
        files = docs[level]
        report = verifier.verify(files[0])
        assert report.indication == "TOTAL-PASSED" and report.signatures[0].level == level, report.summary
        raw = raw_validate(level, root)
        raw(files[0])

        def kyso_warm(i: int, files: list[bytes] = files) -> None:
            verifier.verify(files[i % len(files)])

        def kyso_cold(i: int, files: list[bytes] = files) -> None:
            _cold(container)
            verifier.verify(files[i % len(files)])

        def raw_one(i: int, files: list[bytes] = files, raw: Callable[[bytes], Any] = raw) -> None:
            raw(files[i % len(files)])

        rates = interleaved_rates({"raw": (raw_one, n), "warm": (kyso_warm, n), "cold": (kyso_cold, n)}, repeats)
        raw_name = ("raw pyHanko validate_pdf_signature, fresh ValidationContext, "
                    + ("DSS, hard-fail" if level == "B-LT" else "soft-fail (no revocation data in a B-B file)"))
        warm_ratio = rates["warm"] / rates["raw"]
        results.add(Figure(SECTION, f"verify(), {level}, warm caches", rates["warm"], "docs/s", raw_name=raw_name,
                           raw_value=rates["raw"],
                           note=f"target ≥ {TARGET_WARM:.0f}× raw: {'met' if warm_ratio >= TARGET_WARM else 'NOT met'}; "
                                "kyso also checks revocation against its own store and looks up the registry"))
        results.add(Figure(SECTION, f"verify(), {level}, cold caches", rates["cold"], "docs/s", raw_name=raw_name,
                           raw_value=rates["raw"], note="every kyso cache emptied before each document"))
        with profiler.section(f"verify-{level}"):
            for f in files:
                verifier.verify(f)
