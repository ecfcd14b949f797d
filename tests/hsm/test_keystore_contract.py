"""The contract every KeyStore backend (soft, pkcs11, vault) passes."""
from __future__ import annotations

import threading

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa

from hsm import KeyNotFound, KeyType, SignatureScheme, UnsupportedAlgorithm, keystore_private_key
from hsm.soft import SoftKeyStore


def _digest(data: bytes, algorithm: hashes.HashAlgorithm) -> bytes:
    h = hashes.Hash(algorithm)
    h.update(data)
    return h.finalize()


def _verify(public, signature: bytes, data: bytes, algorithm, scheme: SignatureScheme) -> None:
    if scheme is SignatureScheme.ECDSA:
        public.verify(signature, data, ec.ECDSA(algorithm))
    elif scheme is SignatureScheme.RSA_PSS:
        public.verify(signature, data, padding.PSS(padding.MGF1(algorithm), algorithm.digest_size), algorithm)
    else:
        public.verify(signature, data, padding.PKCS1v15(), algorithm)


CASES = [
    (KeyType.EC_P256, SignatureScheme.ECDSA, hashes.SHA256()),
    (KeyType.EC_P384, SignatureScheme.ECDSA, hashes.SHA384()),
    (KeyType.RSA_2048, SignatureScheme.RSA_PKCS1V15, hashes.SHA256()),
    (KeyType.RSA_2048, SignatureScheme.RSA_PSS, hashes.SHA256()),
    (KeyType.RSA_3072, SignatureScheme.RSA_PSS, hashes.SHA384()),
]


@pytest.mark.parametrize("key_type,scheme,algorithm", CASES, ids=lambda v: getattr(v, "value", getattr(v, "name", v)))
def test_generate_sign_verify(keystore, key_type, scheme, algorithm):
    ref = keystore.generate(key_type, "contract")
    assert ref.startswith(keystore.scheme + ":")
    assert keystore.key_type(ref) is key_type
    public = keystore.public_key(ref)
    assert isinstance(public, rsa.RSAPublicKey if key_type.is_rsa else ec.EllipticCurvePublicKey)
    data = "Giấy khai sinh số 123/2026".encode()
    signature = keystore.sign_digest(ref, _digest(data, algorithm), algorithm, scheme)
    _verify(public, signature, data, algorithm, scheme)
    with pytest.raises(InvalidSignature):
        _verify(public, signature, data + b"!", algorithm, scheme)


def test_list_and_delete(keystore):
    a = keystore.generate(KeyType.EC_P256, "a")
    b = keystore.generate(KeyType.EC_P256, "b")
    assert {a, b} <= {k.ref for k in keystore.list()}
    keystore.delete(a)
    assert a not in {k.ref for k in keystore.list()}
    with pytest.raises(KeyNotFound):
        keystore.public_key(a)
    with pytest.raises(KeyNotFound):
        keystore.sign_digest(a, b"\0" * 32, hashes.SHA256(), SignatureScheme.ECDSA)
    with pytest.raises(KeyNotFound):
        keystore.delete(a)


def test_missing_key_is_a_clear_error(keystore):
    with pytest.raises(KeyNotFound, match="no key|not a"):
        keystore.public_key(keystore.scheme + ":" + "0" * 32)


def test_wrong_algorithm_is_refused(keystore):
    ec_ref = keystore.generate(KeyType.EC_P256, "ec")
    with pytest.raises(UnsupportedAlgorithm):
        keystore.sign_digest(ec_ref, b"\0" * 32, hashes.SHA256(), SignatureScheme.RSA_PSS)
    rsa_ref = keystore.generate(KeyType.RSA_2048, "rsa")
    with pytest.raises(UnsupportedAlgorithm):
        keystore.sign_digest(rsa_ref, b"\0" * 32, hashes.SHA256(), SignatureScheme.ECDSA)
    with pytest.raises(UnsupportedAlgorithm):
        keystore.sign_digest(ec_ref, b"\0" * 20, hashes.SHA256(), SignatureScheme.ECDSA)


def test_eight_threads_sign_at_once(keystore):
    ref = keystore.generate(KeyType.EC_P256, "threads")
    public = keystore.public_key(ref)
    errors: list[BaseException] = []

    def work(i: int) -> None:
        try:
            for j in range(50):
                data = f"{i}-{j}".encode()
                sig = keystore.sign_digest(ref, _digest(data, hashes.SHA256()), hashes.SHA256(), SignatureScheme.ECDSA)
                public.verify(sig, data, ec.ECDSA(hashes.SHA256()))
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []


def test_adapter_signs_like_a_private_key_but_never_exports(keystore):
    ref = keystore.generate(KeyType.EC_P256, "adapter")
    key = keystore_private_key(keystore, ref)
    signature = key.sign(b"data", ec.ECDSA(hashes.SHA256()))
    keystore.public_key(ref).verify(signature, b"data", ec.ECDSA(hashes.SHA256()))
    with pytest.raises(UnsupportedAlgorithm):
        key.private_bytes()
    with pytest.raises(UnsupportedAlgorithm):
        key.private_numbers()


# -- soft backend specifics ---------------------------------------------------------------
def test_soft_keys_are_encrypted_at_rest(tmp_path):
    store = SoftKeyStore(tmp_path / "ks", b"a-long-master-passphrase")
    ref = store.generate(KeyType.EC_P256, "at-rest")
    key_file = tmp_path / "ks" / (ref.removeprefix("soft:") + ".p8")
    content = key_file.read_bytes()
    assert b"ENCRYPTED PRIVATE KEY" in content and b"BEGIN PRIVATE KEY" not in content
    assert oct(key_file.stat().st_mode & 0o777) == "0o600"
    other = SoftKeyStore(tmp_path / "ks", b"another-master-passphrase")
    with pytest.raises(Exception, match="master key does not decrypt"):
        other.sign_digest(ref, b"\0" * 32, hashes.SHA256(), SignatureScheme.ECDSA)
    fresh = SoftKeyStore(tmp_path / "ks", b"a-long-master-passphrase")  # no cache: decrypts from disk
    sig = fresh.sign_digest(ref, _digest(b"x", hashes.SHA256()), hashes.SHA256(), SignatureScheme.ECDSA)
    store.public_key(ref).verify(sig, b"x", ec.ECDSA(hashes.SHA256()))


def test_soft_refuses_short_master_key(tmp_path):
    with pytest.raises(Exception, match="at least 16"):
        SoftKeyStore(tmp_path / "ks", b"short")


MESSAGE = b"kyso.example/log\n42\nAAAA\n"


def test_ed25519_signs_messages_not_digests(keystore):
    """Checkpoint keys: Go's note verifiers and C2SP witnesses take Ed25519 only."""
    ref = keystore.generate(KeyType.ED25519, "checkpoint")
    assert ref.startswith(keystore.scheme + ":")
    assert keystore.key_type(ref) is KeyType.ED25519 and KeyType.ED25519.signs_messages
    public = keystore.public_key(ref)
    assert isinstance(public, ed25519.Ed25519PublicKey)
    signature = keystore.sign_message(ref, MESSAGE)
    assert len(signature) == 64
    public.verify(signature, MESSAGE)
    with pytest.raises(InvalidSignature):
        public.verify(signature, MESSAGE + b"!")
    # PureEdDSA is deterministic (RFC 8032): the backend signed these bytes, not a digest or a variant of them
    assert keystore.sign_message(ref, MESSAGE) == signature
    other = keystore.sign_message(ref, b"")  # an empty message is a message too
    public.verify(other, b"")


@pytest.mark.parametrize("scheme,algorithm", [(SignatureScheme.ECDSA, hashes.SHA256()),
                                              (SignatureScheme.ECDSA, hashes.SHA512()),
                                              (SignatureScheme.RSA_PSS, hashes.SHA256())],
                         ids=["ecdsa-sha256", "ecdsa-sha512", "pss-sha256"])
def test_an_ed25519_key_refuses_to_sign_a_digest(keystore, reopen_keystore, scheme, algorithm):
    """A digest signed as a message would be a valid signature over bytes nobody meant to sign."""
    ref = keystore.generate(KeyType.ED25519, "checkpoint")
    digest = b"\1" * algorithm.digest_size
    with pytest.raises(UnsupportedAlgorithm, match="Ed25519|not digests|refuses"):
        keystore.sign_digest(ref, digest, algorithm, scheme)
    with pytest.raises(UnsupportedAlgorithm):  # also with nothing cached about the key
        reopen_keystore().sign_digest(ref, digest, algorithm, scheme)
    with pytest.raises(UnsupportedAlgorithm):
        keystore_private_key(keystore, ref)


@pytest.mark.parametrize("key_type", [KeyType.EC_P256, KeyType.RSA_2048], ids=lambda k: k.value)
def test_sign_message_refuses_ec_and_rsa_keys(keystore, reopen_keystore, key_type):
    ref = keystore.generate(key_type, "not-ed25519")
    with pytest.raises(UnsupportedAlgorithm, match="not an Ed25519|not Ed25519"):
        keystore.sign_message(ref, MESSAGE)
    with pytest.raises(UnsupportedAlgorithm):
        reopen_keystore().sign_message(ref, MESSAGE)


def test_ed25519_keys_survive_a_restart_and_are_listed(keystore, reopen_keystore):
    ref = keystore.generate(KeyType.ED25519, "log-checkpoint")
    public = keystore.public_key(ref)
    again = reopen_keystore()
    assert again.key_type(ref) is KeyType.ED25519
    assert again.public_key(ref).public_bytes_raw() == public.public_bytes_raw()
    public.verify(again.sign_message(ref, MESSAGE), MESSAGE)
    listed = [k for k in again.list() if k.ref == ref]
    assert [(k.key_type, k.label) for k in listed] == [(KeyType.ED25519, "log-checkpoint")]
    again.delete(ref)
    assert ref not in {k.ref for k in keystore.list()}
    with pytest.raises(KeyNotFound, match="no key"):
        again.sign_message(ref, MESSAGE)
    with pytest.raises(KeyNotFound, match="no key"):
        reopen_keystore().public_key(ref)

