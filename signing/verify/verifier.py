"""Is this PDF genuine, and who signed it? Validation of every signature, ETSI EN 319 102-1 style.

pyHanko does the document and CMS work (byte ranges, digests, signature, timestamp tokens, the
difference analysis of later revisions, DocMDP) and pyhanko-certvalidator builds and checks the
chain with revocation in hard-fail mode. kyso adds what the standard's "validation with time"
asks on top of those facts:

- the proof of existence (POE) of a signature is its timestamp (or a later document timestamp):
  a certificate revoked *after* that time leaves the signature valid ("valid when signed"), one
  revoked before it fails (REVOKED), and without a timestamp a revoked or expired certificate is
  INDETERMINATE (REVOKED_NO_POE, OUT_OF_BOUNDS_NO_POE);
- revocation facts for kyso's own certificates come from kyso's database (the pre-produced OCSP
  responses and CRLs its responder serves), for anyone else's from the file's DSS;
- the registry says whether the file is a document kyso issued, and whether it still stands.

Speed: validating the chain is most of the cost and is the same for every document of a signer, so
validation contexts for chains kyso knows are kept per thread and reused (certvalidator remembers
paths it validated); they are dropped when the revocation epoch moves (any revocation, in any
worker) and after a minute, so a revocation is seen at once.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import logging
from dataclasses import dataclass
from typing import Any, Literal

from asn1crypto import x509 as asn1_x509
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.validation.generic_cms import extract_certs_for_validation
from pyhanko.sign.validation.pdf_embedded import EmbeddedPdfSignature
from pyhanko_certvalidator import ValidationContext
from pyhanko_certvalidator.policy_decl import CertRevTrustPolicy, RevocationCheckingPolicy, RevocationCheckingRule
from sqlalchemy import select
from sqlalchemy.orm import Session

from core import clock, metrics
from core.cache import Cache
from core.db import transaction
from core.errors import Unavailable
from pki.context import PkiContext
from pki.models import Certificate, CertificateStatus
from pki.ocsp import revocation_epoch
from pki.reasons import Reason
from pki.transparency import lookup as transparency
from signing import loop, speedups
from signing.errors import PdfTooLarge, TooComplex, UnreadablePdf
from signing.material import MaterialCache
from signing.registry.models import DocumentFile, SignedDocument
from signing.registry.records import SignatureRecordRow, find_by_signatures
from signing.verify import entitlement, report_text, visual_diff
from signing.verify.chain import (
    SIGNER_USAGE,
    TSA_USAGE,
    ChainStatus,
    RevocationFacts,
    chain_cache,
    chain_status,
    context_for,
)
from signing.verify.changes import ChangeReview, review
from signing.verify.indications import Indication, SubIndication
from signing.verify.limits import Budget, check_limits
from signing.verify.pdf_facts import (
    anchor_label,
    cert_info,
    common_name,
    coverage_of,
    covered_end,
    crypto_check,
    digest,
    dss_material,
    embedded_certificates,
    first_signature,
    format_failure,
    level_of,
    locks_fields,
    open_pdf,
    signing_time_attr,
    timestamp_token,
    worst,
)
from signing.verify.report import (
    VISIBLE_CHANGES,
    CertificateInfo,
    LogRecord,
    Modification,
    RegistryInfo,
    RevocationInfo,
    SignatureReport,
    SignedRevision,
    Text,
    TimestampInfo,
    VerificationReport,
    VisualDifference,
)
from signing.verify.trust import TrustProvider, TrustStore

log = logging.getLogger(__name__)
WEAK_DIGESTS = {"md5", "sha1"}
VISUAL_BUDGET_SECONDS = 2.0
# current-time failures that a proof of existence may resolve (EN 319 102-1 5.6.2.4 past signature
# validation; TRY_LATER too, as pyHanko's AdES past validation does: revocation data that is stale
# now may well have been fresh at the POE)
TIME_FAILURES = {SubIndication.REVOKED_NO_POE, SubIndication.OUT_OF_BOUNDS_NO_POE,
                 SubIndication.OUT_OF_BOUNDS_NOT_REVOKED, SubIndication.EXPIRED, SubIndication.REVOKED_CA_NO_POE,
                 SubIndication.REVOCATION_OUT_OF_BOUNDS_NO_POE, SubIndication.TRY_LATER}
NO_REVOCATION_CHECK = CertRevTrustPolicy(RevocationCheckingPolicy(
    ee_certificate_rule=RevocationCheckingRule.NO_CHECK, intermediate_ca_cert_rule=RevocationCheckingRule.NO_CHECK))
# what the registry says of a file: its record, the records by signature value, an unsigned-bytes change, entitlement
_Lookups = tuple[RegistryInfo | None, dict[bytes, SignatureRecordRow], Modification | None, entitlement.Records | None]
NOT_CHECKED = ChainStatus(None, None, None)  # the signature itself failed: its chain is not looked at
PASSED, INDETERMINATE, FAILED = Indication.TOTAL_PASSED, Indication.INDETERMINATE, Indication.TOTAL_FAILED


@dataclass(frozen=True)
class Judgement:
    """What basic validation and validation with time conclude about one signature."""

    indication: Indication
    sub_indication: SubIndication | None
    revocation: RevocationInfo
    # (revoked_at, reason): valid when signed, revoked since
    revoked_later: tuple[dt.datetime, str | None] | None = None


class Verifier:
    """One per process; ``verify`` runs in a worker thread (blocking database access, pyHanko)."""

    def __init__(self, ctx: PkiContext, material: MaterialCache) -> None:
        speedups.install()  # idempotent: the container installs them at start-up; a verifier built by hand too
        self.ctx = ctx
        self.material = material
        self.watch = material.watch  # the revocation epoch: one reading clears chains and material together
        self.trust = TrustProvider(ctx)
        self.chains = chain_cache(self.watch)
        self.renderings = visual_diff.RenderCache()  # registered versions are rendered once, not per upload
        self.cert_infos: Cache[bytes, CertificateInfo] = Cache("certificate_info", max_entries=4096)
        self.lookups = entitlement.Lookups()
        # the newest log checkpoint verified in this process: a stale or forked one is never "logged"
        self.log_watch = transparency.CheckpointWatch()

    # -- the public operation --------------------------------------------------------------------
    @metrics.counted_verification
    def verify(self, pdf: bytes) -> VerificationReport:
        settings = self.ctx.settings
        if len(pdf) > settings.max_pdf_bytes:
            raise PdfTooLarge(f"the PDF is {len(pdf):,} bytes; the limit is {settings.max_pdf_bytes:,}")
        budget = Budget(settings.verify_time_budget_seconds)
        reader = open_pdf(pdf)
        # a public verifier must not be held by one file: counted before any signature is parsed
        check_limits(reader, max_signatures=settings.verify_max_signatures,
                     max_revisions=settings.verify_max_revisions)
        now = clock.now()
        trust = self.trust.store()
        try:
            embedded = list(reader.embedded_signatures)
        except Exception:  # noqa: BLE001 - a broken AcroForm is the file's fault
            raise UnreadablePdf("the PDF's signature fields cannot be read") from None
        values = [_signature_value(s) for s in embedded]  # read once, in the file's order, for every lookup
        # the revocation epoch always from the primary (a revocation made a moment ago must show now), in the
        # lookups' own unit when there is no replica (one round trip); the registry lookups from the replica,
        # and again from the primary when a signature value is not there (signed a moment ago: replica lag)
        replica = self.ctx.reads.replica is not None
        if replica:
            self._sync_epoch()

        def lookups(session: Session) -> _Lookups:
            if not replica:
                self._sync_epoch(session)
            registry, recorded, differs = self._registry(session, pdf, values)
            records = entitlement.read(session, registry, self.lookups) if registry is not None else None
            if registry is not None and records is not None:
                registry = entitlement.named(session, registry, records)
            return registry, recorded, differs, records

        registry, recorded, differs, records = self.ctx.reads.run(
            lookups, missed=lambda found: any(v is not None and v not in found[1] for v in values))
        # the log's proofs from the primary: a lagging replica's older checkpoint would look like a rollback;
        # and the document's status and newest version too: a withdrawal, a supersession or a newer version
        # the replica has not replayed yet must show now, as a revocation does
        with transaction(self.ctx.sessions, read_only=True) as session:
            if replica and registry is not None:
                registry = _fresh_status(session, registry)
            logs = {v: _log_record(session, row, self.log_watch) for v, row in recorded.items() if row.document_id}
        # by the signature itself, never by its field name (a file may repeat a name)
        known = {id(s): recorded[v] for s, v in zip(embedded, values, strict=True) if v is not None and v in recorded}
        # revisions kyso's own service wrote (not a signHash value: the client's software wrote that revision)
        own = frozenset(key for key, row in known.items() if row.source != "signhash")
        changes = review(reader, pdf, embedded, budget=budget, own=own)
        reports: list[SignatureReport] = []
        doc_timestamps = [s for s in embedded if s.sig_object_type == "/DocTimeStamp"]
        dss_data = dss_material(reader) if "/DSS" in reader.root else {}
        has_dss = bool(dss_data.get("ocsps") or dss_data.get("crls"))
        for sig in embedded:
            if budget.spent():
                raise TooComplex("verifying this PDF takes longer than kyso allows for one file")
            try:
                if sig.sig_object_type == "/DocTimeStamp":
                    reports.append(loop.run(self._timestamp(reader, sig, trust, now, dss_data, changes)))
                else:
                    reports.append(loop.run(self._signature(reader, sig, trust, now, dss_data,
                                                             doc_timestamps, has_dss, changes,
                                                             recorded=id(sig) in known,
                                                             unsigned_changed=differs is not None)))
            except (Unavailable, TooComplex):
                raise  # the database or a keystore is down: 503 and retry, never "damaged" for a sound file
            except Exception as exc:  # a malformed signature is reported, never a 500
                log.warning("signature %s could not be validated: %s", sig.field_name, exc, exc_info=True)
                reports.append(format_failure(sig, exc))
        reports = [dataclasses.replace(r, log=logs[v]) if v is not None and v in logs else r
                   for r, v in zip(reports, values, strict=True)]
        if records is not None:
            reports = entitlement.judge(reports, records)
        notes: list[Text] = []
        for report in reports:
            if report.entitlement is not None and report.entitlement.allowed is False:
                notes.append(report_text.not_entitled(report.field_name, report.entitlement.policy_version,
                                                      report.entitlement.reason))
        modifications = (*changes.modifications, *((differs,) if differs else ()))
        visual = self._look(pdf, embedded, changes, known, budget)
        for report in reports:
            if report.registered is False:
                notes.append(report_text.unrecorded(report.field_name))
        indication, sub = worst(reports)
        seen_changed = any(v.kind in VISIBLE_CHANGES for v in visual)
        if indication == PASSED and (modifications or seen_changed):
            # every signature is sound for what it signed, but the file was changed after one of them
            # by something no signature, timestamp or validation data accounts for: not what was signed
            indication, sub = INDETERMINATE, SubIndication.SIG_CONSTRAINTS_FAILURE
        if modifications or seen_changed:
            notes.append(report_text.CHANGED_AFTER_SIGNING)
        if not reports:
            indication, sub = INDETERMINATE, SubIndication.NO_SIGNATURE_FOUND
        elif not any(r.kind == "signature" for r in reports):
            notes.append(report_text.TIMESTAMP_ONLY)
        if registry is not None and not registry.is_current:
            notes.append(Text(f"Đây là phiên bản {registry.version} của văn bản {registry.document_id}; phiên bản "
                              f"hiện hành là {registry.current_version}.",
                              f"This is version {registry.version} of document {registry.document_id}; the current "
                              f"version is {registry.current_version}."))
        signed_revision = self._signed_revision(embedded, registry) if modifications or seen_changed else None
        summary = report_text.file_summary(indication, len(reports), registry.status if registry else None,
                                           registry.document_id if registry else None, sub=sub,
                                           signed=any(r.kind == "signature" for r in reports),
                                           modified=bool(modifications) or seen_changed)
        return VerificationReport(indication=indication, sub_indication=sub, sha256=hashlib.sha256(pdf).hexdigest(),
                                  signatures=tuple(reports), registry=registry, validated_at=now, summary=summary,
                                  notes=tuple(notes), modifications=modifications, visual_differences=visual,
                                  signed_revision=signed_revision)

    def _look(self, pdf: bytes, embedded: list[EmbeddedPdfSignature], changes: ChangeReview,
              known: dict[int, SignatureRecordRow], budget: Budget) -> tuple[VisualDifference, ...]:
        """Render what the first signature covers and the file as it is, and compare them, as a person
        would: the check that does not depend on how a reader interprets the objects (the parser
        differentials the shadow and incremental-saving attacks exploit). Later signatures' own
        widgets are left out and, where they cover what was signed, reported as overlaps."""
        if not embedded:
            return ()
        first = min(embedded, key=lambda s: s.signed_revision)
        end = covered_end(first)
        if not 0 < end < len(pdf) or not pdf[end:].strip(b"\r\n\t \x00\x0c"):
            return ()  # the signature covers the whole file: nothing was added to look at
        seconds = min(VISUAL_BUDGET_SECONDS, max(0.05, budget.remaining()))
        signed = pdf[:end]
        found = visual_diff.compare(signed, pdf, ignore=changes.widget_boxes, budget_seconds=seconds,
                                    cache=self.renderings)
        # kyso placed its own registered stamps; a foreign later signature's widget over what was
        # signed is worth a line in the report
        kyso_fields = {str(s.field_name) for s in embedded if id(s) in known}
        widgets = [(page, box) for name, page, box in changes.widgets if name not in kyso_fields]
        if widgets and not any(v.kind == "not_compared" for v in found):
            found += visual_diff.annotation_overlaps(pdf, widgets, against=signed, budget_seconds=seconds,
                                                     cache=self.renderings)
        return found

    @staticmethod
    def _signed_revision(embedded: list[EmbeddedPdfSignature], registry: RegistryInfo | None) -> SignedRevision | None:
        """What the first signer signed: the registered version, or the byte prefix that is that revision."""
        first = first_signature(embedded)
        if first is None:
            return None
        return SignedRevision(field_name=str(first.field_name), revision=first.signed_revision + 1,
                              length=covered_end(first),
                              document_id=registry.document_id if registry else None,
                              version=registry.version if registry else None)

    # -- one signature ---------------------------------------------------------------------------
    async def _signature(self, reader: PdfFileReader, sig: EmbeddedPdfSignature, trust: TrustStore,
                         now: dt.datetime, dss: dict[str, Any], doc_timestamps: list[EmbeddedPdfSignature],
                         has_dss: bool, changes: ChangeReview, *, recorded: bool = False,
                         unsigned_changed: bool = False) -> SignatureReport:
        certs = embedded_certificates(sig)
        kyso = self._kyso_chain(certs)
        facts = self._facts(certs, dss, kyso)
        sig.compute_integrity_info(skip_diff=True)  # changes.review did it, once per revision
        integrity = sig.summarise_integrity_info()
        signer = sig.signer_cert
        intact, valid = crypto_check(sig.signer_info, signer, "data", sig.compute_digest())
        timestamp, poe = await self._signature_timestamp(sig, trust, now, facts, kyso)
        later_ts = [t for t in doc_timestamps if t.signed_revision > sig.signed_revision]
        if poe is None and later_ts:
            # a document timestamp over this signature is also proof that it existed by then
            for ts_sig in later_ts:
                ts_report = await self._timestamp(reader, ts_sig, trust, now, dss, changes)
                if ts_report.indication == PASSED and ts_report.timestamp:
                    poe = ts_report.timestamp.time
                    break
        md = sig.md_algorithm
        chain = (await self._chain(signer, certs, SIGNER_USAGE, trust, now, facts, kyso)
                 if intact and valid else NOT_CHECKED)
        judgement = await self._judge(intact, valid, md, chain, poe, signer, certs, trust, facts, kyso, now=now)
        indication, sub, revocation = judgement.indication, judgement.sub_indication, judgement.revocation
        coverage = coverage_of(sig, integrity, reader, changes)
        notes: tuple[Text, ...] = ()
        if indication != FAILED and not coverage.changes_allowed:
            if coverage.covers == "partial" or sig.docmdp_level is not None or locks_fields(sig):
                # a certification (DocMDP) or field lock that the later changes break, or a byte
                # range that does not even cover its own revision
                indication, sub = INDETERMINATE, SubIndication.SIG_CONSTRAINTS_FAILURE
            else:
                # an approval signature forbids nothing: it stays valid for the revision it signed,
                # and the file-level verdict (``verify``) says the file is more than what was signed
                notes = (report_text.revision_only(coverage.revision, coverage.later_revisions),)
        level = level_of(timestamp is not None or bool(later_ts), has_dss, bool(later_ts) and has_dss)
        signer_info = cert_info(signer, self.cert_infos)
        path_certs = list(chain.path.iter_certs(include_root=True)) if chain.path else []
        claimed = sig.self_reported_timestamp or signing_time_attr(sig.signer_info)
        summary = report_text.signature_summary(
            indication, sub, signer_info, poe or claimed, revoked_later=judgement.revoked_later,
            revoked_at=revocation.revoked_at, reason=revocation.reason,
            changed_after=unsigned_changed or not coverage.changes_allowed)
        return SignatureReport(
            field_name=sig.field_name, kind="signature", indication=indication, sub_indication=sub,
            intact=intact, signer=signer_info,
            chain=tuple(cert_info(c, self.cert_infos) for c in reversed(path_certs[:-1])),
            trust_anchor=anchor_label(chain.path.trust_anchor if chain.path else None, trust),
            claimed_signing_time=claimed, timestamp=timestamp, revocation=revocation, coverage=coverage, level=level,
            digest_algorithm=md, signature_algorithm=sig.signer_info["signature_algorithm"]["algorithm"].native,
            summary=summary, notes=notes,
            # a signature made with a kyso certificate counts only if kyso recorded making it
            registered=recorded if kyso else None,
        )

    async def _signature_timestamp(self, sig: EmbeddedPdfSignature, trust: TrustStore, now: dt.datetime,
                                   facts: RevocationFacts,
                                   kyso: bool) -> tuple[TimestampInfo | None, dt.datetime | None]:
        """The signature-timestamp token (B-T): its imprint must be the hash of the signature value."""
        token = timestamp_token(sig.signer_info)
        if token is None:
            return None, None
        signed_data = token["content"]
        tst_info = signed_data["encap_content_info"]["content"].parsed
        imprint = tst_info["message_imprint"]
        expected = digest(imprint["hash_algorithm"]["algorithm"].native, sig.signer_info["signature"].native)
        tsa, intact, trusted = await self._token(signed_data, expected == imprint["hashed_message"].native,
                                                 trust, now, facts, kyso)
        time_ = tst_info["gen_time"].native
        info = TimestampInfo(time=time_, tsa=common_name(tsa) if tsa else None, intact=intact, trusted=trusted)
        return info, (time_ if intact and trusted else None)

    async def _token(self, signed_data: Any, imprint_ok: bool, trust: TrustStore, now: dt.datetime,
                     facts: RevocationFacts, kyso: bool) -> tuple[asn1_x509.Certificate | None, bool, bool]:
        """A timestamp token's TSA certificate, whether the token is intact, and whether the TSA is trusted."""
        tsa = extract_certs_for_validation(signed_data).signer_cert
        signer_info = signed_data["signer_infos"][0]
        content = bytes(signed_data["encap_content_info"]["content"])
        ok, valid = crypto_check(signer_info, tsa, "tst_info",
                            digest(signer_info["digest_algorithm"]["algorithm"].native, content))
        if not (ok and valid and imprint_ok):
            return tsa, False, False
        certs = [c.chosen for c in signed_data["certificates"] if c.name == "certificate"]
        chain = await self._chain(tsa, certs, TSA_USAGE, trust, now, facts, kyso)
        return tsa, True, chain.trusted

    async def _judge(self, intact: bool, valid: bool, md: str, chain: ChainStatus, poe: dt.datetime | None,
                     signer: asn1_x509.Certificate, certs: list[asn1_x509.Certificate], trust: TrustStore,
                     facts: RevocationFacts, kyso: bool, *, now: dt.datetime
                     ) -> Judgement:
        """EN 319 102-1 basic validation, then validation with time using the POE."""
        source: Literal["kyso", "dss", "none"] = "kyso" if kyso else ("dss" if facts.ocsps or facts.crls else "none")
        if not intact:
            return Judgement(FAILED, SubIndication.HASH_FAILURE, RevocationInfo("not_checked", "none"))
        if not valid:
            return Judgement(FAILED, SubIndication.SIG_CRYPTO_FAILURE, RevocationInfo("not_checked", "none"))
        if md.lower() in WEAK_DIGESTS:
            return Judgement(INDETERMINATE, SubIndication.CRYPTO_CONSTRAINTS_FAILURE_NO_POE,
                             RevocationInfo("not_checked", source))
        if chain.trusted:
            return Judgement(PASSED, None, RevocationInfo("good", source))
        details = chain.revocation
        recorded = self._recorded_revocation(signer) if kyso and details is None else None
        if details is not None or recorded is not None:
            if details is not None:
                revoked_at = details.revocation_date
                reason = details.revocation_reason.native if details.revocation_reason else None
            else:  # kyso's own record, when its published data could not be used now (e.g. stale)
                revoked_at, reason = recorded  # type: ignore[misc]
            # a key compromised before it was revoked (RFC 5280 invalidityDate) is untrustworthy from then on
            compromised = self._invalid_from(signer) if kyso else None
            invalid_from = min(revoked_at, compromised) if compromised else revoked_at
            info = RevocationInfo("revoked", source, revoked_at=revoked_at, reason=reason,
                                  revoked_after_signing=None if poe is None else poe < invalid_from)
            if poe is None:
                return Judgement(INDETERMINATE, chain.sub_indication or SubIndication.REVOKED_NO_POE, info)
            if poe >= invalid_from:
                return Judgement(FAILED, SubIndication.REVOKED, info)
            past = await self._past(signer, certs, trust, poe, facts, kyso)
            if past.trusted:
                return Judgement(PASSED, None, info, revoked_later=(revoked_at, reason))
            return Judgement(INDETERMINATE, past.sub_indication or SubIndication.REVOKED_NO_POE, info)
        sub = chain.sub_indication or SubIndication.CERTIFICATE_CHAIN_GENERAL_FAILURE
        # certvalidator reports "no revocation information at all" as a general failure; when the
        # path is otherwise sound that is EN 319 102-1's TRY_LATER (the status may be obtainable
        # later: the CA's CRL, or a file that carries it), as KYSO_VERIFY_FETCH_REVOCATION promises
        if (sub == SubIndication.CERTIFICATE_CHAIN_GENERAL_FAILURE and chain.path is not None and not kyso
                and (await self._without_revocation(signer, certs, trust, now, facts)).trusted):
            sub = SubIndication.TRY_LATER
        if sub in TIME_FAILURES and poe is not None:
            past = await self._past(signer, certs, trust, poe, facts, kyso)
            if past.trusted:
                return Judgement(PASSED, None, RevocationInfo("good", source))
        status: Literal["unknown", "not_checked"] = (
            "unknown" if sub in (SubIndication.TRY_LATER, SubIndication.REVOCATION_OUT_OF_BOUNDS_NO_POE)
            else "not_checked")
        return Judgement(INDETERMINATE, sub, RevocationInfo(status, source))

    async def _without_revocation(self, signer: asn1_x509.Certificate, certs: list[asn1_x509.Certificate],
                                  trust: TrustStore, moment: dt.datetime, facts: RevocationFacts) -> ChainStatus:
        """The signer's chain at ``moment`` with revocation left out (what else is wrong with it)."""
        context = ValidationContext(
            trust_roots=list(trust.anchors), other_certs=[*trust.intermediates, *facts.certs], allow_fetching=False,
            revinfo_policy=NO_REVOCATION_CHECK, moment=moment,
        )
        return await chain_status(signer, certs, SIGNER_USAGE, context)

    async def _past(self, signer: asn1_x509.Certificate, certs: list[asn1_x509.Certificate], trust: TrustStore,
                    poe: dt.datetime, facts: RevocationFacts, kyso: bool) -> ChainStatus:
        """Past certificate validation at the POE (EN 319 102-1 5.6.2.4).

        For a chain kyso issued, the revocation facts are kyso's own records: the path is validated
        at the POE (signatures, validity periods, key usage) and every certificate on it must not
        have been revoked or held at or before the POE. certvalidator cannot do this with the
        current OCSP responses: it validates their responder certificate at the POE, and
        responders are renewed every year. For anyone else's chain, the file's DSS at the POE."""
        if not kyso:
            return await self._chain(signer, certs, SIGNER_USAGE, trust, poe, facts, kyso, cache=False)
        status = await self._without_revocation(signer, certs, trust, poe, facts)
        if not status.trusted or status.path is None:
            return status
        for cert in status.path.iter_certs(include_root=False):
            row = self.revocation_of(cert)
            if row is None:
                return ChainStatus(status.path, SubIndication.CERTIFICATE_CHAIN_GENERAL_FAILURE, None)
            invalid_from = row.invalidity_date if row.invalidity_date is not None else row.revoked_at
            if (row.status in (CertificateStatus.REVOKED, CertificateStatus.ON_HOLD) and invalid_from is not None
                    and clock.aware(invalid_from) <= poe):
                return ChainStatus(status.path, SubIndication.REVOKED_NO_POE if cert.sha256 == signer.sha256
                                   else SubIndication.REVOKED_CA_NO_POE, None)
        return status

    def _invalid_from(self, cert: asn1_x509.Certificate) -> dt.datetime | None:
        """The invalidity date kyso recorded for a revoked certificate (when the key is known or suspected
        to have been compromised), or None."""
        row = self.revocation_of(cert)
        if row is None or row.status != CertificateStatus.REVOKED or row.invalidity_date is None:
            return None
        return clock.aware(row.invalidity_date)

    def _recorded_revocation(self, cert: asn1_x509.Certificate) -> tuple[dt.datetime, str | None] | None:
        """(revoked_at, RFC 5280 reason name) from kyso's database, for a revoked or held kyso certificate."""
        row = self.revocation_of(cert)
        if (row is None or row.status not in (CertificateStatus.REVOKED, CertificateStatus.ON_HOLD)
                or row.revoked_at is None):
            return None
        try:
            reason: str | None = Reason(row.revocation_reason).flag.name if row.revocation_reason else None
        except ValueError:
            reason = None
        return clock.aware(row.revoked_at), reason

    # -- document timestamps ---------------------------------------------------------------------
    async def _timestamp(self, reader: PdfFileReader, sig: EmbeddedPdfSignature, trust: TrustStore,
                         now: dt.datetime, dss: dict[str, Any], changes: ChangeReview) -> SignatureReport:
        certs = embedded_certificates(sig)
        kyso = self._kyso_chain(certs)
        facts = self._facts(certs, dss, kyso)
        sig.compute_integrity_info(skip_diff=True)
        integrity = sig.summarise_integrity_info()
        tst_info = sig.signed_data["encap_content_info"]["content"].parsed
        imprint_ok = sig.compute_digest() == tst_info["message_imprint"]["hashed_message"].native
        tsa, intact, trusted = await self._token(sig.signed_data, imprint_ok, trust, now, facts, kyso)
        time_ = tst_info["gen_time"].native
        if not intact:
            indication, sub = FAILED, SubIndication.HASH_FAILURE
        elif trusted:
            indication, sub = PASSED, None
        else:
            chain = await self._chain(tsa, certs, TSA_USAGE, trust, now, facts, kyso)
            indication, sub = INDETERMINATE, chain.sub_indication or SubIndication.CERTIFICATE_CHAIN_GENERAL_FAILURE
        info = cert_info(tsa, self.cert_infos) if tsa is not None else None
        return SignatureReport(
            field_name=sig.field_name, kind="document_timestamp", indication=indication, sub_indication=sub,
            intact=intact, signer=info, chain=(), trust_anchor=None, claimed_signing_time=time_,
            timestamp=TimestampInfo(time=time_, tsa=info.common_name if info else None, intact=intact, trusted=trusted),
            revocation=RevocationInfo("good" if trusted else "not_checked", "kyso" if kyso else "dss"),
            coverage=coverage_of(sig, integrity, reader, changes), level=None, digest_algorithm=sig.md_algorithm,
            signature_algorithm=sig.signer_info["signature_algorithm"]["algorithm"].native,
            summary=report_text.signature_summary(indication, sub, info, time_, timestamp_kind=True),
        )

    # -- chains and revocation facts -------------------------------------------------------------
    def _kyso_chain(self, certs: list[asn1_x509.Certificate]) -> bool:
        return bool(certs) and self.material.revocation_data(certs).complete

    def _facts(self, certs: list[asn1_x509.Certificate], dss: dict[str, Any], kyso: bool) -> RevocationFacts:
        """kyso's own (current, authoritative) data for its chains; the file's DSS for anyone else's."""
        if kyso:
            data = self.material.revocation_data(certs)
            return RevocationFacts(certs=data.certs, ocsps=data.ocsps, crls=data.crls)
        return RevocationFacts(certs=tuple(dss.get("other_certs", ())), ocsps=tuple(dss.get("ocsps", ())),
                               crls=tuple(dss.get("crls", ())))

    def _sync_epoch(self, session: Session | None = None) -> int:
        """Read the revocation epoch (one small query) at the start of every verification.

        Not throttled like the OCSP answer cache: a revocation made a moment ago, in this worker or
        another, must show in the very next verification. When it moved, the cached chain results
        and the material cache's revocation data (throttled and kept a few seconds on its own) are
        dropped (they watch the same epoch, ``self.watch``), so the chain is validated again with the
        new OCSP responses and CRLs."""
        if session is None:
            with transaction(self.ctx.sessions, read_only=True) as own:
                epoch = revocation_epoch(own)
        else:
            epoch = revocation_epoch(session)
        self.watch.observe(epoch)
        return epoch

    def _current_epoch(self) -> int:
        epoch = self.watch.epoch
        return self._sync_epoch() if epoch is None else epoch

    async def _chain(self, cert: asn1_x509.Certificate, certs: list[asn1_x509.Certificate], usage: Any,
                     trust: TrustStore, moment: dt.datetime, facts: RevocationFacts, kyso: bool, *,
                     cache: bool = True) -> ChainStatus:
        key = None
        if kyso and cache:
            key = (cert.sha256, id(usage), trust.fingerprint, self._current_epoch(), int(moment.timestamp() // 60))
            hit = self.chains.get(key)
            if hit is not None:
                return hit
        context = context_for(trust, facts, moment, fetch=not kyso and self.ctx.settings.verify_fetch_revocation)
        status = await chain_status(cert, certs, usage, context)
        if key is not None:
            self.chains.put(key, status)
        return status

    # -- registry --------------------------------------------------------------------------------
    @staticmethod
    def _registry(session: Session, pdf: bytes, file_values: list[bytes | None]
                  ) -> tuple[RegistryInfo | None, dict[bytes, SignatureRecordRow], Modification | None]:
        """The registry record found by the file's signature values (not by the file's hash: bytes
        around a signature can change without touching it), the records of every value kyso made, and
        a modification when the file differs from the registered version outside the signed ranges
        (e.g. a changed ``/Contents`` padding byte) in a way no later revision accounts for."""
        values = [v for v in file_values if v is not None]
        records = find_by_signatures(session, values)
        newest = next((records[v] for v in reversed(values) if v in records and records[v].document_id), None)
        if newest is None or newest.version is None:
            return None, records, None
        doc = session.get(SignedDocument, newest.document_id)
        if doc is None:
            return None, records, None
        stored = session.execute(select(DocumentFile.sha256, DocumentFile.size).where(
            DocumentFile.document_id == doc.id, DocumentFile.version == newest.version)).first()
        exact = stored is not None and hashlib.sha256(pdf).hexdigest() == stored.sha256
        prefix = (not exact and stored is not None and stored.size < len(pdf)
                  and hashlib.sha256(pdf[:stored.size]).hexdigest() == stored.sha256)
        differs = None
        if stored is not None and not exact and not prefix:
            differs = Modification(
                revision=0, after_signature="", category="unsigned_bytes", object=None, page=None,
                text=Text(f"Tệp khác với phiên bản {newest.version} đã đăng ký của văn bản {doc.id} "
                          "ở những byte chữ ký không bảo vệ (ví dụ phần đệm của chữ ký): "
                          "đây không phải tệp đã được cấp.",
                          f"The file differs from registered version {newest.version} of document {doc.id} "
                          "in bytes the signatures do not protect (e.g. a signature's padding): "
                          "it is not the file that was issued."))
        info = RegistryInfo(
            document_id=doc.id, status=doc.status, document_type=doc.document_type,
            commune_code=doc.commune_code, signed_at=doc.signed_at, version=newest.version,
            current_version=doc.version, is_current=newest.version == doc.version and exact,
            status_reason=doc.status_reason, superseded_by=doc.superseded_by,
        )
        return info, records, differs

    def revocation_of(self, cert: asn1_x509.Certificate) -> Certificate | None:
        with transaction(self.ctx.sessions, read_only=True) as session:
            row = session.execute(select(Certificate)
                                  .where(Certificate.sha256 == cert.sha256.hex())).scalar_one_or_none()
            if row is not None:
                session.expunge(row)
            return row


def _fresh_status(session: Session, registry: RegistryInfo) -> RegistryInfo:
    """``registry`` (read from the replica) with the status and newest version the primary has now."""
    doc = session.get(SignedDocument, registry.document_id)
    if doc is None:  # never deleted; keep what was read
        return registry
    return dataclasses.replace(registry, status=doc.status, status_reason=doc.status_reason,
                               superseded_by=doc.superseded_by, current_version=doc.version,
                               is_current=registry.is_current and registry.version == doc.version)


def _log_record(session: Session, row: SignatureRecordRow, watch: transparency.CheckpointWatch) -> LogRecord:
    """The registration of this signature in the transparency log, proven before it is reported."""
    assert row.document_id is not None
    found = transparency.document_log(session, row.document_id, signature_sha256=row.sha256, watch=watch)
    reg = found.registration
    if reg is None:
        return LogRecord(found.state, row.document_id, row.version, reason=found.reason)
    return LogRecord("logged", row.document_id, reg.version, reg.index, reg.origin, reg.tree_size, reg.root_hash,
                     reg.proof)


def _signature_value(sig: EmbeddedPdfSignature) -> bytes | None:
    """The raw signature value (inside the signed CMS, so no byte around it can change it)."""
    try:
        return bytes(sig.signer_info["signature"].native)
    except Exception:  # noqa: BLE001 - a malformed CMS is judged by its own report
        return None


__all__ = ["Verifier"]
