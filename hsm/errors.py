"""Keystore errors, mapped to HTTP by ``api/`` through their core base classes."""
from core.errors import ConfigurationError, InvalidInput, KysoError, NotFound, Unavailable


class KeystoreError(KysoError):
    code = "keystore_error"


class KeyNotFound(NotFound):
    code = "key_not_found"


class UnsupportedAlgorithm(InvalidInput):
    code = "unsupported_algorithm"


class KeystoreUnavailable(Unavailable):
    code = "keystore_unavailable"


class KeystoreMisconfigured(ConfigurationError):
    code = "keystore_misconfigured"
