"""The building blocks against vectors written by others (RFC 6238 Appendix B) and their security properties."""
from __future__ import annotations

import datetime as dt
import urllib.parse
from pathlib import Path

import pytest

from core.errors import ConfigurationError
from signing.activation import crypto as sec
from tests.helpers.db import make_settings

RFC6238_SHA1_SECRET = b"12345678901234567890"
RFC6238_SHA1 = [(59, "94287082"), (1111111109, "07081804"), (1111111111, "14050471"),
                (1234567890, "89005924"), (2000000000, "69279037"), (20000000000, "65353130")]


@pytest.mark.parametrize("unix_time, expected", RFC6238_SHA1)
def test_totp_matches_rfc6238_appendix_b(unix_time: int, expected: str) -> None:
    assert sec.totp(RFC6238_SHA1_SECRET, unix_time // 30, digits=8) == expected


def test_matching_step_accepts_one_step_of_drift_and_no_more() -> None:
    secret = sec.new_totp_secret()
    now = dt.datetime(2026, 12, 20, 8, 0, 15, tzinfo=dt.UTC)
    step = sec.step_at(now)
    for offset in (-1, 0, 1):
        assert sec.matching_step(secret, sec.totp(secret, step + offset), now) == step + offset
    for offset in (-3, -2, 2, 3):
        code = sec.totp(secret, step + offset)
        if all(code != sec.totp(secret, step + o) for o in (-1, 0, 1)):
            assert sec.matching_step(secret, code, now) is None
    assert sec.matching_step(secret, "12345", now) is None and sec.matching_step(secret, "abcdef", now) is None


def test_otpauth_uri_is_the_key_uri_format_authenticator_apps_read() -> None:
    secret = sec.new_totp_secret()
    uri = sec.otpauth_uri(secret, "Nguyễn Thị Hoa (cred_1)")
    parsed = urllib.parse.urlparse(uri)
    query = dict(urllib.parse.parse_qsl(parsed.query))
    assert parsed.scheme == "otpauth" and parsed.netloc == "totp"
    assert urllib.parse.unquote(parsed.path) == "/kyso:Nguyễn Thị Hoa (cred_1)"
    assert query == {"secret": query["secret"], "issuer": "kyso", "algorithm": "SHA1", "digits": "6", "period": "30"}
    assert "=" not in query["secret"] and sec.secret_from_uri(uri) == secret
    assert sec.png_qr(uri).startswith(b"\x89PNG\r\n\x1a\n")


def test_pin_hash_is_salted_and_peppered(tmp_path: Path) -> None:
    keys = sec.ActivationKeys.from_settings(make_settings(tmp_path, "sqlite://"))
    other = sec.ActivationKeys(pin_pepper=b"p" * 32, totp_key=b"k" * 32)
    salt = sec.new_salt()
    stored = sec.hash_pin("271828", salt, keys)
    assert b"271828" not in stored and len(stored) == 32
    assert sec.pin_matches("271828", salt, stored, keys)
    assert not sec.pin_matches("271829", salt, stored, keys)
    assert not sec.pin_matches("271828", salt, stored, other)  # the database alone does not check a PIN
    assert sec.hash_pin("271828", sec.new_salt(), keys) != stored


def test_sealed_totp_secret_is_bound_to_its_credential_and_the_master_key(tmp_path: Path) -> None:
    keys = sec.ActivationKeys.from_settings(make_settings(tmp_path, "sqlite://"))
    secret = sec.new_totp_secret()
    sealed = sec.seal(secret, "cred_a", keys)
    assert secret not in sealed and sec.unseal(sealed, "cred_a", keys) == secret
    with pytest.raises(ConfigurationError):
        sec.unseal(sealed, "cred_b", keys)
    with pytest.raises(ConfigurationError):
        sec.unseal(sealed, "cred_a", sec.ActivationKeys(pin_pepper=keys.pin_pepper, totp_key=b"k" * 32))
