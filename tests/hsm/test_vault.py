"""Vault/OpenBao Transit specifics, against a real OpenBao dev server (see vault_fixtures.py)."""
from __future__ import annotations

import logging
import re
import secrets
import time
import traceback
from pathlib import Path

import hvac
import pytest
import requests
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding

from core.settings import Settings
from hsm import KeyNotFound, KeyStoreRegistry, KeystoreUnavailable, KeyType, SignatureScheme, UnsupportedAlgorithm
from hsm.errors import KeystoreError, KeystoreMisconfigured
from hsm.vault import VaultKeyStore, parse_ref
from tests.hsm.vault_fixtures import BaoServer, start_bao

SHA256 = hashes.SHA256()


def _digest(data: bytes, algorithm: hashes.HashAlgorithm = SHA256) -> bytes:
    h = hashes.Hash(algorithm)
    h.update(data)
    return h.finalize()


def _ec_sign(store: VaultKeyStore, ref: str, data: bytes) -> bytes:
    return store.sign_digest(ref, _digest(data), SHA256, SignatureScheme.ECDSA)


@pytest.fixture
def private_bao(tmp_path: Path):
    """A server of its own, for tests that seal or stop it."""
    server = start_bao(tmp_path / "bao")
    server.client().sys.enable_secrets_engine("transit", path="transit")
    yield server
    server.stop()


def _full_error_text(exc: BaseException) -> str:
    return "".join(traceback.format_exception(exc)) + repr(exc)


def test_refs_are_versioned_and_an_unversioned_ref_means_version_1(vault_keystore, vault_mount):
    ref = vault_keystore.generate(KeyType.EC_P256, "Giấy khai sinh – Đông Hà")
    assert re.fullmatch(rf"vault:{vault_mount}/kyso-[0-9a-f]{{16}}-giay-khai-sinh-dong-ha#1", ref)
    bare = ref.removesuffix("#1")
    assert parse_ref(bare).version == 1
    assert vault_keystore.public_key(bare).public_numbers() == vault_keystore.public_key(ref).public_numbers()
    [info] = [k for k in vault_keystore.list() if k.ref == ref]
    assert info.label == "giay-khai-sinh-dong-ha" and info.key_type is KeyType.EC_P256
    with pytest.raises(KeyNotFound, match="version 2 does not exist"):
        vault_keystore.public_key(bare + "#2")
    with pytest.raises(KeyNotFound, match="no key"):
        vault_keystore.public_key(f"vault:{vault_mount}/kyso-0000000000000000#1")


def test_rotation_keeps_old_refs_on_their_version(vault_keystore):
    old = vault_keystore.generate(KeyType.EC_P256, "rotate")
    new = vault_keystore.rotate(old)
    assert new == old.replace("#1", "#2")
    old_pub, new_pub = vault_keystore.public_key(old), vault_keystore.public_key(new)
    assert old_pub.public_numbers() != new_pub.public_numbers()
    for ref, right, wrong in ((old, old_pub, new_pub), (new, new_pub, old_pub)):
        signature = _ec_sign(vault_keystore, ref, b"certificate bound to one version")
        right.verify(signature, b"certificate bound to one version", ec.ECDSA(SHA256))
        with pytest.raises(InvalidSignature):
            wrong.verify(signature, b"certificate bound to one version", ec.ECDSA(SHA256))
    assert {old, new} <= {k.ref for k in vault_keystore.list()}
    with pytest.raises(KeystoreError, match="versions"):  # deleting would destroy the new version too
        vault_keystore.delete(old)


def test_an_ed25519_ref_signs_with_its_own_version_after_rotation(vault_keystore, bao_server, vault_mount):
    old = vault_keystore.generate(KeyType.ED25519, "checkpoint")
    data = bao_server.client().secrets.transit.read_key(parse_ref(old).name, mount_point=vault_mount)["data"]
    assert data["type"] == "ed25519" and data["derived"] is False
    new = vault_keystore.rotate(old)
    old_pub, new_pub = vault_keystore.public_key(old), vault_keystore.public_key(new)
    assert isinstance(old_pub, ed25519.Ed25519PublicKey) and old_pub != new_pub
    for ref, right, wrong in ((old, old_pub, new_pub), (new, new_pub, old_pub)):
        signature = vault_keystore.sign_message(ref, b"checkpoint\n7\n")
        right.verify(signature, b"checkpoint\n7\n")
        with pytest.raises(InvalidSignature):
            wrong.verify(signature, b"checkpoint\n7\n")


def test_a_derived_ed25519_key_made_outside_kyso_is_refused(vault_keystore, bao_server, vault_mount):
    """A derived key signs only with a per-call context kyso never sends: refused up front, not listed."""
    name = "kyso-00000000000000aa-derived"
    bao_server.client().secrets.transit.create_key(name, key_type="ed25519", derived=True, mount_point=vault_mount)
    ref = f"vault:{vault_mount}/{name}#1"
    for call in (lambda: vault_keystore.key_type(ref), lambda: vault_keystore.sign_message(ref, b"x"),
                 lambda: vault_keystore.public_key(ref)):
        with pytest.raises(UnsupportedAlgorithm, match="derived"):
            call()
    assert ref not in {k.ref for k in vault_keystore.list()}


def test_rsa_pss_salt_is_the_hash_length(vault_keystore):
    ref = vault_keystore.generate(KeyType.RSA_3072, "pss")
    for algorithm in (hashes.SHA256(), hashes.SHA512()):
        data = b"salt as long as the hash"
        signature = vault_keystore.sign_digest(ref, _digest(data, algorithm), algorithm, SignatureScheme.RSA_PSS)
        public = vault_keystore.public_key(ref)
        public.verify(signature, data, padding.PSS(padding.MGF1(algorithm), algorithm.digest_size), algorithm)
        with pytest.raises(InvalidSignature):  # an explicit salt length is checked exactly
            public.verify(signature, data, padding.PSS(padding.MGF1(algorithm), algorithm.digest_size + 1), algorithm)
    with pytest.raises(UnsupportedAlgorithm):
        vault_keystore.sign_digest(ref, b"\0" * 20, hashes.SHA1(), SignatureScheme.RSA_PSS)


@pytest.mark.parametrize("key_type", [KeyType.EC_P384, KeyType.ED25519], ids=lambda k: k.value)
def test_keys_are_not_exportable(vault_keystore, bao_server, vault_mount, key_type):
    ref = vault_keystore.generate(key_type, "export")
    name = parse_ref(ref).name
    transit = bao_server.client().secrets.transit
    data = transit.read_key(name, mount_point=vault_mount)["data"]
    assert data["exportable"] is False and data["allow_plaintext_backup"] is False
    with pytest.raises(hvac.exceptions.InvalidRequest, match="not exportable"):
        transit.export_key(name, key_type="signing-key", mount_point=vault_mount)
    with pytest.raises(hvac.exceptions.VaultError):
        transit.backup_key(name, mount_point=vault_mount)


def test_approle_login_and_relogin_after_the_token_is_revoked(bao_server, vault_mount, caplog):
    root = bao_server.client()
    approle = f"approle-{secrets.token_hex(3)}"
    root.sys.enable_auth_method("approle", path=approle)
    policy = f"kyso-{vault_mount}"
    root.sys.create_or_update_policy(policy, f"""
        path "{vault_mount}/keys" {{ capabilities = ["list"] }}
        path "{vault_mount}/keys/*" {{ capabilities = ["create", "read", "update", "delete", "list"] }}
        path "{vault_mount}/sign/*" {{ capabilities = ["update"] }}
    """)
    root.auth.approle.create_or_update_approle("kyso", token_policies=[policy], token_ttl="10m", mount_point=approle)
    role_id = root.auth.approle.read_role_id("kyso", mount_point=approle)["data"]["role_id"]
    secret_id = root.auth.approle.generate_secret_id("kyso", mount_point=approle)["data"]["secret_id"]
    store = VaultKeyStore(bao_server.addr, mount=vault_mount, role_id=role_id, secret_id=secret_id,
                          approle_mount=approle)
    caplog.set_level(logging.DEBUG)
    assert store.health() == "ok"
    ref = store.generate(KeyType.EC_P256, "approle")
    store.public_key(ref).verify(_ec_sign(store, ref, b"a"), b"a", ec.ECDSA(SHA256))
    assert ref in {k.ref for k in store.list()}
    first_token = store._client.token
    root.auth.token.revoke(first_token)
    store.public_key(ref).verify(_ec_sign(store, ref, b"b"), b"b", ec.ECDSA(SHA256))
    assert store._client.token != first_token
    second_token, store._token_expiry = store._client.token, 0.0
    _ec_sign(store, ref, b"c")
    assert store._client.token != second_token
    with pytest.raises(hvac.exceptions.InvalidRequest, match="not exportable"):  # the policy does not help either
        root.secrets.transit.export_key(parse_ref(ref).name, key_type="signing-key", mount_point=vault_mount)
    store.delete(ref)
    bad = VaultKeyStore(bao_server.addr, mount=vault_mount, role_id=role_id, secret_id="wrong-" + secret_id,
                        approle_mount=approle)
    with pytest.raises(KeystoreUnavailable, match="AppRole login") as excinfo:
        bad.health()
    for text in (_full_error_text(excinfo.value), caplog.text):
        assert secret_id not in text and first_token not in text and store._client.token not in text


def test_token_file_is_reread_when_the_token_is_refused(bao_server, vault_mount, tmp_path):
    root = bao_server.client()
    token_file = tmp_path / "token"
    token_file.write_text(root.auth.token.create(ttl="10m")["auth"]["client_token"] + "\n")
    store = VaultKeyStore(bao_server.addr, mount=vault_mount, token_file=token_file)
    ref = store.generate(KeyType.EC_P256, "token-file")
    root.auth.token.revoke(token_file.read_text().strip())
    token_file.write_text(root.auth.token.create(ttl="10m")["auth"]["client_token"])  # as Vault Agent would
    _ec_sign(store, ref, b"after renewal")
    root.auth.token.revoke(token_file.read_text().strip())  # revoked, and no new token in the file
    with pytest.raises(KeystoreUnavailable, match="refused kyso's token"):
        _ec_sign(store, ref, b"no renewal")


def test_namespace(bao_server):
    namespace = f"commune-{secrets.token_hex(3)}"
    bao_server.client().adapter.post(f"/v1/sys/namespaces/{namespace}")
    hvac.Client(bao_server.addr, token=bao_server.root_token, namespace=namespace).sys.enable_secrets_engine(
        "transit", path="transit")
    store = VaultKeyStore(bao_server.addr, token=bao_server.root_token, namespace=namespace)
    ref = store.generate(KeyType.EC_P256, "namespaced")
    store.public_key(ref).verify(_ec_sign(store, ref, b"ns"), b"ns", ec.ECDSA(SHA256))
    with pytest.raises(KeyNotFound):  # the same reference outside the namespace names nothing
        VaultKeyStore(bao_server.addr, token=bao_server.root_token).public_key(ref)


def test_a_refused_token_never_appears_in_errors_or_logs(bao_server, vault_mount, caplog):
    caplog.set_level(logging.DEBUG)
    token = "s." + secrets.token_urlsafe(24)
    store = VaultKeyStore(bao_server.addr, mount=vault_mount, token=token)
    for call in (store.health, lambda: store.generate(KeyType.EC_P256, "x"), store.list):
        with pytest.raises(KeystoreUnavailable, match=re.escape(f"Vault Transit at {bao_server.addr} refused")) as exc:
            call()
        assert token not in _full_error_text(exc.value)
    assert token not in caplog.text


def test_sealed_server_is_unavailable_and_says_so(private_bao: BaoServer):
    store = VaultKeyStore(private_bao.addr, token=private_bao.root_token)
    ref = store.generate(KeyType.EC_P256, "sealed")
    private_bao.client().sys.seal()
    for call in (store.health, lambda: _ec_sign(store, ref, b"x"), lambda: store.generate(KeyType.EC_P256, "y")):
        with pytest.raises(KeystoreUnavailable, match=rf"Vault Transit at {private_bao.addr} is sealed: unseal it") as exc:
            call()
        assert private_bao.root_token not in _full_error_text(exc.value)


def test_stopped_server_is_unavailable_quickly(private_bao: BaoServer, caplog):
    store = VaultKeyStore(private_bao.addr, token=private_bao.root_token, timeout=5)
    ref = store.generate(KeyType.EC_P256, "stopped")
    checkpoint = store.generate(KeyType.ED25519, "stopped-checkpoint")
    _ec_sign(store, ref, b"warm keep-alive connection")
    private_bao.stop()
    for call in (lambda: _ec_sign(store, ref, b"x"), store.health, lambda: store.sign_message(checkpoint, b"x")):
        started = time.monotonic()
        with pytest.raises(KeystoreUnavailable, match="is unreachable") as exc:
            call()
        assert time.monotonic() - started < 15
        assert "3 attempts" in str(exc.value) and private_bao.root_token not in _full_error_text(exc.value)
    assert "retry 1/2" in caplog.text and private_bao.root_token not in caplog.text


def test_transient_failures_are_retried_then_given_up(vault_keystore, monkeypatch):
    ref = vault_keystore.generate(KeyType.EC_P256, "flaky")
    session = vault_keystore._client.adapter.session
    real, failures = session.request, {"left": 2}

    def flaky(*args, **kwargs):
        if failures["left"] > 0:
            failures["left"] -= 1
            raise requests.ConnectionError("connection reset by peer")
        return real(*args, **kwargs)

    monkeypatch.setattr(session, "request", flaky)
    vault_keystore.public_key(ref).verify(_ec_sign(vault_keystore, ref, b"x"), b"x", ec.ECDSA(SHA256))
    failures["left"] = 3
    with pytest.raises(KeystoreUnavailable, match="3 attempts"):
        _ec_sign(vault_keystore, ref, b"y")


@pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning")
def test_tls_with_the_ca_certificate(tmp_path):
    server = start_bao(tmp_path / "tls", tls=True)
    try:
        assert server.addr.startswith("https://") and server.ca_cert is not None
        assert VaultKeyStore(server.addr, token=server.root_token, ca_cert=server.ca_cert).health() == "ok"
        with pytest.raises(KeystoreUnavailable, match="TLS verification failed"):
            VaultKeyStore(server.addr, token=server.root_token).health()
        assert VaultKeyStore(server.addr, token=server.root_token, tls_verify=False).health() == "ok"
    finally:
        server.stop()


def test_missing_mount_is_a_configuration_error(bao_server):
    store = VaultKeyStore(bao_server.addr, mount="no-such-transit", token=bao_server.root_token)
    with pytest.raises(KeystoreMisconfigured, match="bao secrets enable -path=no-such-transit transit"):
        store.generate(KeyType.EC_P256, "x")
    with pytest.raises(KeystoreMisconfigured, match="no Transit engine"):
        store.list()
    with pytest.raises(KeyNotFound, match="no Transit engine"):
        store.public_key("vault:no-such-transit/kyso-0000000000000000#1")


def test_from_settings_through_the_registry(bao_server, vault_mount, tmp_path):
    settings = Settings(home=tmp_path, keystore="vault", vault_addr=bao_server.addr, vault_mount=vault_mount,
                        vault_token=bao_server.root_token)
    registry = KeyStoreRegistry.from_settings(settings)
    assert "vault" in registry.names() and registry.health()["vault"] == "ok"
    ref = registry.get().generate(KeyType.EC_P256, "registry")
    assert registry.for_ref(ref).key_type(ref) is KeyType.EC_P256
    with pytest.raises(KeystoreMisconfigured, match="SECRET_ID"):
        VaultKeyStore.from_settings(settings.model_copy(update={"vault_token": None, "vault_role_id": "r"}))
