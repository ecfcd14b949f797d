"""PKI errors; each names what went wrong and what the caller can do about it."""
from core.errors import Conflict, InvalidInput, NotFound, PermissionDenied


class UnknownCA(NotFound):
    code = "unknown_ca"


class UnknownCertificate(NotFound):
    code = "unknown_certificate"


class UnknownCredential(NotFound):
    code = "unknown_credential"


class MalformedInput(InvalidInput):
    """PEM/DER that does not parse."""

    code = "malformed_input"


class BadCSR(InvalidInput):
    code = "bad_csr"


class WeakKey(InvalidInput):
    code = "weak_key"


class SubjectInvalid(InvalidInput):
    code = "subject_invalid"


class CAExists(Conflict):
    code = "ca_exists"


class CANotReady(Conflict):
    code = "ca_not_ready"


class CARevoked(Conflict):
    """The CA's own certificate is revoked: it may no longer issue or renew anything."""

    code = "ca_revoked"


class CertificateMismatch(InvalidInput):
    code = "certificate_mismatch"


class RevocationConflict(Conflict):
    code = "revocation_conflict"


class FourEyesRequired(PermissionDenied):
    """A destructive CA operation asked for through a path without a second operator's approval."""

    code = "four_eyes_required"
