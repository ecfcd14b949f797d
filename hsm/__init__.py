"""Where private keys live: one ``KeyStore`` interface, several backends.

Nothing above ``hsm/`` knows which backend holds a key; keys are named by reference strings
(``soft:<id>``, later ``pkcs11:...`` and ``vault:<mount>/<key>``).
"""
from .errors import KeyNotFound, KeystoreError, KeystoreUnavailable, UnsupportedAlgorithm
from .interfaces import KeyInfo, KeyStore, KeyType, SignatureScheme
from .keyref import KeyStoreRegistry
from .private_key import keystore_private_key

__all__ = [
    "KeyInfo", "KeyNotFound", "KeyStore", "KeyStoreRegistry", "KeyType", "KeystoreError", "KeystoreUnavailable",
    "SignatureScheme", "UnsupportedAlgorithm", "keystore_private_key",
]
