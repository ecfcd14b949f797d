"""Certificate-chain status for verification, with the results kept for chains kyso knows.

Validating a signer's chain (path building, signature checks on every certificate, revocation
from OCSP responses and CRLs) is most of the cost of verifying a document, and it is the same for
every document of that signer at a given moment. For a chain whose revocation facts come from
kyso's own database the result is kept per (certificate, usage, trust store, revocation epoch,
minute): any revocation in any worker moves the epoch and empties the cache, and a minute bounds
how stale "now" can get. Chains kyso did not issue depend on the file's own DSS and are validated
afresh for every file.

pyHanko's own pieces do the work: its path builder, ``validate_cert_usage`` (key usage and the
mapping of certvalidator's errors onto AdES sub-indications). A signer whose key or extended key
usage does not allow document signing comes out INDETERMINATE/CHAIN_CONSTRAINTS_FAILURE.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from asn1crypto import x509 as asn1_x509
from pyhanko.sign.ades.report import AdESIndeterminate
from pyhanko.sign.validation.generic_cms import validate_cert_usage
from pyhanko.sign.validation.settings import KeyUsageConstraints
from pyhanko.sign.validation.status import RevocationDetails
from pyhanko_certvalidator import ValidationContext
from pyhanko_certvalidator.errors import InvalidCertificateError
from pyhanko_certvalidator.path import ValidationPath

from core.cache import Cache, EpochWatch
from signing.material import DOCUMENT_SIGNING
from signing.verify.indications import SubIndication
from signing.verify.trust import TrustStore

DOCUMENT_EKUS = frozenset({DOCUMENT_SIGNING, "email_protection"})


@dataclass(frozen=True)
class DocumentSignerUsage(KeyUsageConstraints):
    """What a document signer's certificate must allow (issue 15, item 5).

    keyUsage: nonRepudiation (contentCommitment) or digitalSignature, as before.
    extendedKeyUsage: when the extension is present it must name documentSigning (RFC 9336) or
    emailProtection (NSS-family readers want it for PDF signers); kyso's api-client (clientAuth),
    OCSP responder (OCSPSigning) and TSA (timeStamping) certificates fail here. A certificate with no
    EKU extension passes on keyUsage alone: Vietnamese CA end-entity profiles (VGCA, VNPT, ...) carry
    none, and RFC 5280 4.2.1.12 leaves such a certificate unrestricted.

    anyExtendedKeyUsage alone is refused (RFC 5280 4.2.1.12 lets applications that need a specific
    purpose do so): no Vietnamese signing profile we know of uses it, and a certificate that names a
    purpose set has told us it was not meant for documents unless it names one of ours. pyHanko's
    ``explicit_extd_key_usage_required=False`` would accept it, hence this small override.
    """

    def validate_asserted_extended_key_usage(self, asserted_key_usages: set[str]) -> None:
        if not asserted_key_usages:
            return  # no EKU extension: keyUsage decides
        if not asserted_key_usages & set(self.extd_key_usage or ()):
            raise InvalidCertificateError(
                "The certificate's extended key usages (" + ", ".join(sorted(asserted_key_usages)) + ") do not "
                "include document signing (1.3.6.1.5.5.7.3.36) or email protection: it may not sign documents.")


SIGNER_USAGE = DocumentSignerUsage(key_usage={"non_repudiation", "digital_signature"}, match_all_key_usages=False,
                                   extd_key_usage=DOCUMENT_EKUS, explicit_extd_key_usage_required=False)
TSA_USAGE = KeyUsageConstraints(key_usage=set(), extd_key_usage={"time_stamping"})
MAX_ENTRIES = 4096


@dataclass(frozen=True)
class ChainStatus:
    path: ValidationPath | None
    sub_indication: SubIndication | None  # None: trusted (or, without a path, not checked)
    revocation: RevocationDetails | None

    @property
    def trusted(self) -> bool:
        return self.sub_indication is None and self.path is not None


@dataclass(frozen=True)
class RevocationFacts:
    """Revocation material for one validation: kyso's own, the file's DSS, or both."""

    certs: tuple[asn1_x509.Certificate, ...] = ()
    ocsps: tuple[Any, ...] = ()
    crls: tuple[Any, ...] = ()


def context_for(trust: TrustStore, facts: RevocationFacts, moment: dt.datetime, *, fetch: bool) -> ValidationContext:
    """Hard-fail revocation (STYLE.md trap: pyHanko defaults to soft-fail), revocation data issued after
    the moment accepted (kyso's responses are produced after the signatures they vouch for)."""
    return ValidationContext(
        trust_roots=list(trust.anchors), other_certs=[*trust.intermediates, *facts.certs], ocsps=list(facts.ocsps),
        crls=list(facts.crls), allow_fetching=fetch, revocation_mode="hard-fail", retroactive_revinfo=True,
        moment=moment,
    )


async def chain_status(cert: asn1_x509.Certificate, certs: list[asn1_x509.Certificate], usage: KeyUsageConstraints,
                       context: ValidationContext) -> ChainStatus:
    context.certificate_registry.register_multiple(certs)
    try:
        paths = context.path_builder.async_build_paths_lazy(cert)
        result = await validate_cert_usage(cert, context, key_usage_settings=usage, paths=paths)
    except ValueError:
        return ChainStatus(None, SubIndication.of(AdESIndeterminate.CERTIFICATE_CHAIN_GENERAL_FAILURE), None)
    sub = SubIndication.of(result.error_subindic) if result.error_subindic is not None else None
    return ChainStatus(result.success_result or result.error_path, sub, result.revo_details)


# (certificate's SHA-256, id of the usage, trust store fingerprint, revocation epoch, minute)
ChainKey = tuple[bytes, int, str, int, int]


def chain_cache(watch: EpochWatch | None = None) -> Cache[ChainKey, ChainStatus]:
    """Chain results by (certificate, usage, trust, revocation epoch, minute), per process (results are
    immutable); dropped when ``watch`` sees the revocation epoch move. Owned by the verifier."""
    return Cache("verification_chains", max_entries=MAX_ENTRIES, watch=watch)
