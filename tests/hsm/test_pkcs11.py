"""PKCS#11 backend specifics, against a real SoftHSM2 token (the shared contract runs in the suite)."""
from __future__ import annotations

import logging
import threading
import time
import traceback

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding
from pkcs11 import Attribute, KeyType as P11KeyType, Mechanism, ObjectClass, exceptions as p11e

from core.settings import load_settings
from hsm import KeyNotFound, KeyStoreRegistry, KeystoreUnavailable, KeyType, SignatureScheme, UnsupportedAlgorithm
from hsm.errors import KeystoreMisconfigured
from hsm.pkcs11 import Pkcs11KeyStore, Pkcs11Uri, digest_info
from tests.hsm.pkcs11_fixtures import USER_PIN, SoftHsm, softhsm


def _digest(data: bytes, algorithm: hashes.HashAlgorithm) -> bytes:
    h = hashes.Hash(algorithm)
    h.update(data)
    return h.finalize()


@pytest.fixture
def hsm(tmp_path_factory: pytest.TempPathFactory) -> SoftHsm:
    return softhsm(tmp_path_factory)


@pytest.fixture
def token(hsm: SoftHsm, monkeypatch: pytest.MonkeyPatch):
    label = hsm.new_token(monkeypatch)
    yield label
    hsm.delete_token(label)


# -- URIs --------------------------------------------------------------------------------------
def test_uri_round_trip_percent_encodes_labels_and_ids():
    uri = Pkcs11Uri("kyso", "Xã Tân Phú; CA=1/2?", bytes([0, 1, 0x3B, 0xFF]), "private")
    text = str(uri)
    assert text == "pkcs11:token=kyso;object=X%C3%A3%20T%C3%A2n%20Ph%C3%BA%3B%20CA%3D1%2F2%3F;id=%00%01%3b%ff;type=private"
    assert Pkcs11Uri.parse(text) == uri


def test_uri_parses_rfc7512_example():
    uri = Pkcs11Uri.parse("pkcs11:token=The%20Software%20PKCS%2311%20Softtoken;manufacturer=Snake%20Oil,%20Inc.;"
                          "model=1.0;object=my-certificate;type=cert;id=%69%95%3E%5C%F4%BD%EC%91%54%8D%48%7D%AB%37"
                          "%B2%E7%AF%A0%A3%D5?pin-source=file:/etc/token_pin")
    assert uri.token == "The Software PKCS#11 Softtoken" and uri.object == "my-certificate" and uri.type == "cert"
    assert uri.id == bytes.fromhex("69953e5cf4bdec91548d487dab37b2e7afa0a3d5")


@pytest.mark.parametrize("bad", ["soft:abc", "pkcs11:", "pkcs11:token=kyso", "pkcs11:id", "pkcs11:id=%01;id=%02",
                                 "pkcs11:object=%ff"])
def test_uri_refuses_malformed(bad):
    with pytest.raises(ValueError):
        Pkcs11Uri.parse(bad)


def test_generated_ref_is_an_rfc7512_uri(pkcs11_keystore: Pkcs11KeyStore):
    ref = pkcs11_keystore.generate(KeyType.EC_P256, "Xã Tân Phú")
    uri = Pkcs11Uri.parse(ref)
    assert ref.startswith("pkcs11:token=kyso-") and uri.type == "private" and len(uri.id or b"") == 16
    assert uri.object is not None and uri.object.startswith("Xã Tân Phú-")
    assert [k.label for k in pkcs11_keystore.list() if k.ref == ref] == ["Xã Tân Phú"]
    by_id = str(Pkcs11Uri(id=uri.id))  # a hand-written URI naming the same key works too
    assert pkcs11_keystore.public_key(by_id) == pkcs11_keystore.public_key(ref)
    with pytest.raises(KeyNotFound, match="on PKCS#11 token 'other'"):
        pkcs11_keystore.public_key(str(Pkcs11Uri("other", id=uri.id)))


# -- key protection --------------------------------------------------------------------------
@pytest.mark.parametrize("key_type,secret", [(KeyType.EC_P256, Attribute.VALUE), (KeyType.RSA_2048, Attribute.PRIVATE_EXPONENT),
                                             (KeyType.ED25519, Attribute.VALUE)])
def test_keys_are_sensitive_and_non_extractable(pkcs11_keystore: Pkcs11KeyStore, key_type, secret):
    ref = pkcs11_keystore.generate(key_type, "protected")
    wanted = [Attribute.TOKEN, Attribute.PRIVATE, Attribute.SENSITIVE, Attribute.ALWAYS_SENSITIVE,
              Attribute.EXTRACTABLE, Attribute.NEVER_EXTRACTABLE, Attribute.SIGN, Attribute.DECRYPT]

    def read(session):
        key = pkcs11_keystore._find(session, ref, ObjectClass.PRIVATE_KEY)
        attrs = {a: key[a] for a in wanted}
        with pytest.raises(p11e.AttributeSensitive):
            key[secret]
        return attrs

    attrs = pkcs11_keystore._run(read)
    assert attrs == {Attribute.TOKEN: True, Attribute.PRIVATE: True, Attribute.SENSITIVE: True,
                     Attribute.ALWAYS_SENSITIVE: True, Attribute.EXTRACTABLE: False,
                     Attribute.NEVER_EXTRACTABLE: True, Attribute.SIGN: True, Attribute.DECRYPT: False}


def test_ed25519_keys_are_edwards_keys_with_the_rfc8410_oid(pkcs11_keystore: Pkcs11KeyStore):
    ref = pkcs11_keystore.generate(KeyType.ED25519, "checkpoint")

    def read(session):
        public = pkcs11_keystore._find(session, ref, ObjectClass.PUBLIC_KEY)
        private = pkcs11_keystore._find(session, ref, ObjectClass.PRIVATE_KEY)
        return (public[Attribute.KEY_TYPE], bytes(public[Attribute.EC_PARAMS]), private[Attribute.KEY_TYPE],
                bytes(public[Attribute.EC_POINT]))

    public_type, params, private_type, point = pkcs11_keystore._run(read)
    assert public_type == private_type == P11KeyType.EC_EDWARDS and params == bytes.fromhex("06032b6570")
    assert point == b"\x04\x20" + pkcs11_keystore.public_key(ref).public_bytes_raw()  # an OCTET STRING


def test_an_ed25519_key_named_by_its_curve_name_is_used_too(pkcs11_keystore: Pkcs11KeyStore):
    """PKCS#11 3.0 lets CKA_EC_PARAMS be the printable name "edwards25519" (other tools write it)."""
    key_id = b"\x42" * 8

    def make(session):
        session.raw.generate_keypair(
            P11KeyType.EC_EDWARDS, mechanism=Mechanism.EC_EDWARDS_KEY_PAIR_GEN, store=True,
            public_template={Attribute.TOKEN: True, Attribute.ID: key_id, Attribute.LABEL: "outside",
                             Attribute.EC_PARAMS: b"\x13\x0cedwards25519", Attribute.VERIFY: True},
            private_template={Attribute.TOKEN: True, Attribute.ID: key_id, Attribute.LABEL: "outside",
                              Attribute.SIGN: True, Attribute.SENSITIVE: True, Attribute.EXTRACTABLE: False})

    pkcs11_keystore._run(make)
    ref = str(Pkcs11Uri(id=key_id))
    assert pkcs11_keystore.key_type(ref) is KeyType.ED25519
    pkcs11_keystore.public_key(ref).verify(pkcs11_keystore.sign_message(ref, b"checkpoint"), b"checkpoint")
    assert [k.key_type for k in pkcs11_keystore.list() if k.label == "outside"] == [KeyType.ED25519]


def test_a_token_without_eddsa_refuses_ed25519_clearly(pkcs11_keystore: Pkcs11KeyStore, monkeypatch):
    """Tokens before PKCS#11 3.0 answer CKR_MECHANISM_INVALID; the refusal says what is missing, nothing is left."""
    pkcs11_keystore.generate(KeyType.EC_P256, "warm")  # a pooled session to stand in for the old token

    class NoEdwards:
        def __init__(self, raw):
            self._raw = raw

        def __getattr__(self, name):
            return getattr(self._raw, name)

        def generate_keypair(self, key_type, *args, **kwargs):
            if key_type == P11KeyType.EC_EDWARDS:
                raise p11e.MechanismInvalid()
            return self._raw.generate_keypair(key_type, *args, **kwargs)

    for session in pkcs11_keystore._pool._idle:
        monkeypatch.setattr(session, "raw", NoEdwards(session.raw))
    before = {k.ref for k in pkcs11_keystore.list()}
    with pytest.raises(UnsupportedAlgorithm, match="cannot make Ed25519 keys .*CKM_EDDSA"):
        pkcs11_keystore.generate(KeyType.ED25519, "checkpoint")
    assert {k.ref for k in pkcs11_keystore.list()} == before
    pkcs11_keystore.generate(KeyType.EC_P256, "still-works")


@pytest.mark.parametrize("algorithm", [hashes.SHA1(), hashes.SHA224(), hashes.SHA256(), hashes.SHA384(), hashes.SHA512()],
                         ids=lambda a: a.name)
def test_rsa_signs_every_supported_hash(pkcs11_keystore: Pkcs11KeyStore, algorithm):
    ref = pkcs11_keystore.generate(KeyType.RSA_2048, "hashes")
    public = pkcs11_keystore.public_key(ref)
    digest = _digest(b"data", algorithm)
    sig = pkcs11_keystore.sign_digest(ref, digest, algorithm, SignatureScheme.RSA_PKCS1V15)
    public.verify(sig, b"data", padding.PKCS1v15(), algorithm)
    sig = pkcs11_keystore.sign_digest(ref, digest, algorithm, SignatureScheme.RSA_PSS)
    public.verify(sig, b"data", padding.PSS(padding.MGF1(algorithm), algorithm.digest_size), algorithm)


def test_digest_info_matches_rfc8017():
    prefix = digest_info(bytes.fromhex("0609608648016503040201"), b"\0" * 32)[:-32]
    assert prefix.hex() == "3031300d060960864801650304020105000420"


# -- PIN handling ------------------------------------------------------------------------------
def test_wrong_pin_is_a_clear_error_that_is_not_retried(hsm: SoftHsm, token: str, caplog):
    caplog.set_level(logging.DEBUG)
    wrong = hsm.keystore(token, pin="WRONG-pin-4d2b8e")
    with pytest.raises(KeystoreMisconfigured, match=rf"PKCS#11 token '{token}' refused the PIN.*KYSO_PKCS11_PIN") as info:
        wrong.generate(KeyType.EC_P256, "x")
    with pytest.raises(KeystoreMisconfigured):  # latched: the token is not asked again
        wrong.list()
    with pytest.raises(KeystoreUnavailable, match="refused the PIN"):
        wrong.health()
    rendered = "".join(traceback.format_exception(info.value)) + str(info.value) + repr(wrong) + caplog.text
    assert "WRONG-pin-4d2b8e" not in rendered
    right = hsm.keystore(token)  # the token was not locked
    assert right.health() == "ok"


def test_pin_never_appears_in_logs_errors_or_reprs(hsm: SoftHsm, monkeypatch, caplog):
    pin = "secret-pin-7f3e9a1c"
    label = hsm.new_token(monkeypatch, pin=pin)
    caplog.set_level(logging.DEBUG)
    store = hsm.keystore(label, pin=pin)
    ref = store.generate(KeyType.EC_P256, "pin")
    store.sign_digest(ref, b"\0" * 32, hashes.SHA256(), SignatureScheme.ECDSA)
    hsm.delete_token(label)
    with pytest.raises(KeystoreUnavailable) as info:
        store.sign_digest(ref, b"\0" * 32, hashes.SHA256(), SignatureScheme.ECDSA)
    rendered = "".join(traceback.format_exception(info.value)) + repr(store) + repr(store._pool.__dict__) + caplog.text
    assert "logged in to PKCS#11 token" in caplog.text and pin not in rendered


def test_pin_comes_from_settings_or_file(hsm: SoftHsm, token: str, tmp_path, monkeypatch):
    for name in ("KYSO_PKCS11_PIN", "KYSO_PKCS11_PIN_FILE", "KYSO_CONFIG"):
        monkeypatch.delenv(name, raising=False)
    pin_file = tmp_path / "pin"
    pin_file.write_text(USER_PIN + "\n")
    settings = load_settings(home=tmp_path, pkcs11_module=hsm.module, pkcs11_token_label=token, pkcs11_pin_file=pin_file,
                             soft_master_key="a-long-enough-master-key", keystore="pkcs11")
    registry = KeyStoreRegistry.from_settings(settings)
    ref = registry.get().generate(KeyType.EC_P256, "from-settings")
    assert isinstance(registry.for_ref(ref), Pkcs11KeyStore)
    monkeypatch.setenv("KYSO_PKCS11_PIN", USER_PIN)
    assert Pkcs11KeyStore.from_settings(load_settings(pkcs11_module=hsm.module, pkcs11_token_label=token)).health() == "ok"
    monkeypatch.delenv("KYSO_PKCS11_PIN")
    with pytest.raises(KeystoreMisconfigured, match="has no PIN: set KYSO_PKCS11_PIN"):
        Pkcs11KeyStore.from_settings(load_settings(pkcs11_module=hsm.module))
    with pytest.raises(KeystoreMisconfigured, match="PIN file .*nope cannot be read"):
        Pkcs11KeyStore.from_settings(load_settings(pkcs11_module=hsm.module, pkcs11_pin_file=tmp_path / "nope"))


# -- an unavailable token ----------------------------------------------------------------------
def test_missing_module_and_absent_token_name_the_keystore(hsm: SoftHsm, token: str):
    missing = Pkcs11KeyStore("/nonexistent/libnope.so", "kyso", __import__("pydantic").SecretStr(USER_PIN))
    with pytest.raises(KeystoreUnavailable, match=r"PKCS#11 token 'kyso': the module /nonexistent/libnope.so cannot"):
        missing.health()
    absent = hsm.keystore("no-such-token")
    with pytest.raises(KeystoreUnavailable, match=r"PKCS#11 token 'no-such-token' is not present.*--init-token"):
        absent.generate(KeyType.EC_P256, "x")


def test_token_removed_mid_run_is_unavailable_without_hanging(hsm: SoftHsm, token: str):
    store = hsm.keystore(token)
    ref = store.generate(KeyType.EC_P256, "removed")
    other = store.generate(KeyType.RSA_2048, "removed-uncached")
    checkpoint = store.generate(KeyType.ED25519, "removed-checkpoint")
    store.sign_digest(ref, b"\0" * 32, hashes.SHA256(), SignatureScheme.ECDSA)
    store.sign_message(checkpoint, b"x")
    hsm.delete_token(token)
    started = time.monotonic()
    for call in (lambda: store.sign_digest(ref, b"\0" * 32, hashes.SHA256(), SignatureScheme.ECDSA),
                 store.health, store.list, lambda: store.public_key(other), lambda: store.sign_message(checkpoint, b"x")):
        with pytest.raises(KeystoreUnavailable, match=rf"PKCS#11 token '{token}' is not present"):
            call()
    assert time.monotonic() - started < 5


# -- the session pool --------------------------------------------------------------------------
def test_sessions_are_pooled_and_reused_by_8_threads(hsm: SoftHsm, token: str):
    store = hsm.keystore(token, pool_size=4)
    ref = store.generate(KeyType.EC_P256, "pool")
    public = store.public_key(ref)
    errors: list[BaseException] = []

    def work(i: int) -> None:
        try:
            for j in range(40):
                data = f"{i}-{j}".encode()
                sig = store.sign_digest(ref, _digest(data, hashes.SHA256()), hashes.SHA256(), SignatureScheme.ECDSA)
                public.verify(sig, data, ec.ECDSA(hashes.SHA256()))
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    for _ in range(2):  # the second round opens nothing new
        threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == [] and 1 <= store._pool.opened <= 4


def test_a_broken_session_is_replaced(hsm: SoftHsm, token: str):
    store = hsm.keystore(token, pool_size=2)
    ref = store.generate(KeyType.EC_P256, "broken")
    store.sign_digest(ref, b"\0" * 32, hashes.SHA256(), SignatureScheme.ECDSA)
    opened = store._pool.opened
    store._pool._idle[0].raw.close()  # the handle dies underneath the pool
    sig = store.sign_digest(ref, _digest(b"x", hashes.SHA256()), hashes.SHA256(), SignatureScheme.ECDSA)
    store.public_key(ref).verify(sig, b"x", ec.ECDSA(hashes.SHA256()))
    assert store._pool.opened == opened + 1
