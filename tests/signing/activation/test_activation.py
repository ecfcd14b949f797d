"""Enrolment, authorization, SAD use and lockout, in the domain (SQLite and PostgreSQL, real PKI, frozen clock)."""
from __future__ import annotations

import json
import threading

import pytest
from sqlalchemy import select

from api.container import Container
from core import audit
from core.db import transaction
from signing.activation import crypto as sec, enrolment, factors
from signing.activation.factors import ActivationData, CredentialLocked, InvalidActivationData, InvalidSAD, WeakPin
from tests.helpers.activation import PIN, Phone, some_hashes
from tests.helpers.clock import FrozenClock

CLIENT = "token:dossier-software"


def _audit(container: Container, prefix: str = "activation:") -> list[audit.AuditEntry]:
    with transaction(container.sessions) as session:
        return [e for e in session.execute(select(audit.AuditEntry).order_by(audit.AuditEntry.seq)).scalars()
                if e.action.startswith(prefix)]


def test_secrets_at_rest_are_neither_the_pin_nor_the_totp_secret(pki: Container, enrolled: tuple[str, Phone]) -> None:
    credential, phone = enrolled
    with transaction(pki.sessions) as session:
        row = session.get(ActivationData, credential)
        assert PIN.encode() not in row.pin_hash and phone.secret not in row.totp_secret
        assert row.pin_kdf == sec.PIN_KDF and len(row.pin_salt) == 16


@pytest.mark.parametrize("pin", ["12345", "1234567890123", "12ab56", "111111", "123456", "987654", "٣٣٣٤٤٤"])
def test_weak_or_malformed_pins_are_refused(pki: Container, specialist: str, pin: str) -> None:
    code = enrolment.issue(pki.pki, specialist, "token:operator").code
    with pytest.raises(WeakPin):
        enrolment.redeem(pki.pki, code, pin, pin)


def test_authorize_gives_a_sad_that_signs_its_hashes_once(pki: Container, enrolled: tuple[str, Phone],
                                                          frozen: FrozenClock) -> None:
    credential, phone = enrolled
    hashes = some_hashes(3)
    sad = factors.authorize(pki.pki, credential, PIN, phone.code(), hashes, "sha256", 3, CLIENT, purpose=factors.SADPurpose.HASH)
    assert sad.token.startswith("kyso_sad_") and (sad.expires_at - frozen.now).total_seconds() == 300
    with pytest.raises(InvalidSAD, match="another client"):
        factors.consume(pki.pki, credential, sad.token, hashes, actor="token:someone-else", purpose=factors.SADPurpose.HASH)
    with pytest.raises(InvalidSAD, match="not one this SAD"):
        factors.consume(pki.pki, credential, sad.token, some_hashes(1), actor=CLIENT, purpose=factors.SADPurpose.HASH)
    with pytest.raises(InvalidSAD, match="sha256"):
        factors.consume(pki.pki, credential, sad.token, hashes, actor=CLIENT, hash_algo="sha384", purpose=factors.SADPurpose.HASH)
    factors.consume(pki.pki, credential, sad.token, hashes, actor=CLIENT, purpose=factors.SADPurpose.HASH)
    with pytest.raises(InvalidSAD, match="already used"):
        factors.consume(pki.pki, credential, sad.token, hashes, actor=CLIENT, purpose=factors.SADPurpose.HASH)
    # nothing secret in the audit log: no PIN, no code, no SAD
    entries = _audit(pki)
    text = json.dumps([[e.action, e.details] for e in entries])
    assert PIN not in text and sad.token not in text and sad.token[9:] not in text
    grant = next(e for e in entries if e.action == "activation:authorize:grant")
    assert json.loads(grant.details)["num_signatures"] == 3 and grant.actor == CLIENT


def test_expired_sad_is_refused(pki: Container, enrolled: tuple[str, Phone], frozen: FrozenClock) -> None:
    credential, phone = enrolled
    hashes = some_hashes(1)
    sad = factors.authorize(pki.pki, credential, PIN, phone.code(), hashes, None, 1, CLIENT, purpose=factors.SADPurpose.HASH)
    frozen.advance(301)
    with pytest.raises(InvalidSAD, match="expired"):
        factors.consume(pki.pki, credential, sad.token, hashes, actor=CLIENT, purpose=factors.SADPurpose.HASH)


def test_sad_of_another_credential_is_refused(pki: Container, enrolled: tuple[str, Phone], frozen: FrozenClock) -> None:
    from tests.helpers.signing import issue_credential

    credential, phone = enrolled
    other = issue_credential(pki, name="Trần Văn Bình", id_number="001190000002")
    hashes = some_hashes(1)
    sad = factors.authorize(pki.pki, credential, PIN, phone.code(), hashes, "sha256", 1, CLIENT, purpose=factors.SADPurpose.HASH)
    with pytest.raises(InvalidSAD, match="unknown SAD"):
        factors.consume(pki.pki, other, sad.token, hashes, actor=CLIENT, purpose=factors.SADPurpose.HASH)


def test_a_totp_code_is_accepted_once(pki: Container, enrolled: tuple[str, Phone], frozen: FrozenClock) -> None:
    credential, phone = enrolled
    code = phone.code()
    factors.authorize(pki.pki, credential, PIN, code, some_hashes(1), "sha256", 1, CLIENT, purpose=factors.SADPurpose.HASH)
    with pytest.raises(InvalidActivationData):
        factors.authorize(pki.pki, credential, PIN, code, some_hashes(1), "sha256", 1, CLIENT, purpose=factors.SADPurpose.HASH)
    frozen.advance(10)  # same step, still the same code: refused
    with pytest.raises(InvalidActivationData):
        factors.authorize(pki.pki, credential, PIN, phone.code(), some_hashes(1), "sha256", 1, CLIENT, purpose=factors.SADPurpose.HASH)
    deny = [json.loads(e.details) for e in _audit(pki) if e.action == "activation:authorize:deny"]
    assert [d["why"] for d in deny] == ["otp_replayed", "otp_replayed"]
    frozen.next_step()
    factors.authorize(pki.pki, credential, PIN, phone.code(), some_hashes(1), "sha256", 1, CLIENT, purpose=factors.SADPurpose.HASH)


def test_many_wrong_pins_lock_until_an_operator_unlocks(pki: Container, enrolled: tuple[str, Phone],
                                                        frozen: FrozenClock) -> None:
    credential, phone = enrolled
    pki.settings.activation_lock_after = 10  # the throttle's delays (1, 2, 4, 8, 16 s) each fit in one step
    for attempt in range(1, 11):
        frozen.next_step()
        expected = CredentialLocked if attempt == 10 else InvalidActivationData
        with pytest.raises(expected) as info:
            factors.authorize(pki.pki, credential, "999999", phone.code(), some_hashes(1), "sha256", 1, CLIENT, purpose=factors.SADPurpose.HASH)
        assert info.value.details["attempts_left"] == 10 - attempt
    assert factors.status(pki.pki, credential).state == "locked"
    frozen.next_step()
    with pytest.raises(CredentialLocked):  # the right PIN and a fresh code do not help
        factors.authorize(pki.pki, credential, PIN, phone.code(), some_hashes(1), "sha256", 1, CLIENT, purpose=factors.SADPurpose.HASH)
    with pytest.raises(CredentialLocked):
        factors.change_pin(pki.pki, credential, PIN, "314159")
    factors.unlock(pki.pki, credential, "token:operator")
    assert factors.status(pki.pki, credential).as_dict()["attempts_left"] == 10
    frozen.advance(60)  # the throttle's last delay (32 s) has passed
    factors.authorize(pki.pki, credential, PIN, phone.code(), some_hashes(1), "sha256", 1, CLIENT, purpose=factors.SADPurpose.HASH)
    actions = [e.action for e in _audit(pki)]
    assert actions.count("activation:credential:lock") == 1 and "activation:credential:unlock" in actions


def test_wrong_otps_count_toward_the_same_lock(pki: Container, enrolled: tuple[str, Phone], frozen: FrozenClock) -> None:
    credential, phone = enrolled
    pki.settings.activation_lock_after = 10
    wrong = "000000" if phone.code() != "000000" else "111111"
    for _ in range(8):
        frozen.next_step()
        with pytest.raises(InvalidActivationData):
            factors.authorize(pki.pki, credential, PIN, wrong, some_hashes(1), "sha256", 1, CLIENT, purpose=factors.SADPurpose.HASH)
    frozen.next_step()
    with pytest.raises(InvalidActivationData):
        factors.change_pin(pki.pki, credential, "999999", "314159")
    frozen.next_step()
    with pytest.raises(CredentialLocked):
        factors.authorize(pki.pki, credential, "999999", phone.code(), some_hashes(1), "sha256", 1, CLIENT, purpose=factors.SADPurpose.HASH)


def test_a_success_resets_the_count(pki: Container, enrolled: tuple[str, Phone], frozen: FrozenClock) -> None:
    credential, phone = enrolled
    for _ in range(4):
        frozen.next_step()
        with pytest.raises(InvalidActivationData):
            factors.authorize(pki.pki, credential, "999999", phone.code(), some_hashes(1), "sha256", 1, CLIENT, purpose=factors.SADPurpose.HASH)
    frozen.next_step()
    factors.authorize(pki.pki, credential, PIN, phone.code(), some_hashes(1), "sha256", 1, CLIENT, purpose=factors.SADPurpose.HASH)
    assert factors.status(pki.pki, credential).failed_attempts == 0


def test_change_pin(pki: Container, enrolled: tuple[str, Phone], frozen: FrozenClock) -> None:
    credential, phone = enrolled
    factors.change_pin(pki.pki, credential, PIN, "314159")
    with pytest.raises(InvalidActivationData):
        factors.authorize(pki.pki, credential, PIN, phone.code(), some_hashes(1), "sha256", 1, CLIENT, purpose=factors.SADPurpose.HASH)
    frozen.next_step()
    factors.authorize(pki.pki, credential, "314159", phone.code(), some_hashes(1), "sha256", 1, CLIENT, purpose=factors.SADPurpose.HASH)


def test_re_enrolment_replaces_the_phone_and_voids_outstanding_sads(pki: Container, enrolled: tuple[str, Phone],
                                                                     frozen: FrozenClock) -> None:
    credential, phone = enrolled
    hashes = some_hashes(1)
    sad = factors.authorize(pki.pki, credential, PIN, phone.code(), hashes, "sha256", 1, CLIENT, purpose=factors.SADPurpose.HASH)
    code = enrolment.issue(pki.pki, credential, "token:operator").code
    new_phone = Phone(sec.secret_from_uri(enrolment.redeem(pki.pki, code, "314159", "314159").uri), frozen)
    factors.consume(pki.pki, credential, sad.token, hashes, actor=CLIENT, purpose=factors.SADPurpose.HASH)  # redeemed, not confirmed: still hers
    frozen.next_step()
    sad = factors.authorize(pki.pki, credential, PIN, phone.code(), hashes, "sha256", 1, CLIENT, purpose=factors.SADPurpose.HASH)
    enrolment.finish(pki.pki, code, new_phone.code())
    with pytest.raises(InvalidSAD, match="changed or is locked"):
        factors.consume(pki.pki, credential, sad.token, hashes, actor=CLIENT, purpose=factors.SADPurpose.HASH)


def test_extend_transaction_spends_the_old_sad(pki: Container, enrolled: tuple[str, Phone], frozen: FrozenClock) -> None:
    credential, phone = enrolled
    hashes = some_hashes(2)
    first = factors.authorize(pki.pki, credential, PIN, phone.code(), hashes, "sha256", 2, CLIENT, purpose=factors.SADPurpose.HASH)
    frozen.advance(240)
    second = factors.extend(pki.pki, credential, first.token, None, actor=CLIENT)
    assert second.expires_at > first.expires_at
    with pytest.raises(InvalidSAD, match="already used"):
        factors.consume(pki.pki, credential, first.token, hashes, actor=CLIENT, purpose=factors.SADPurpose.HASH)
    frozen.advance(240)
    factors.consume(pki.pki, credential, second.token, hashes, actor=CLIENT, purpose=factors.SADPurpose.HASH)


def test_malformed_requests_are_refused_and_audited(pki: Container, enrolled: tuple[str, Phone]) -> None:
    from core.errors import InvalidInput

    credential, phone = enrolled
    with pytest.raises(InvalidInput, match="numSignatures"):
        factors.authorize(pki.pki, credential, PIN, phone.code(), some_hashes(2), "sha256", 3, CLIENT, purpose=factors.SADPurpose.HASH)
    with pytest.raises(InvalidInput, match="32 bytes"):
        factors.authorize(pki.pki, credential, PIN, phone.code(), some_hashes(1, "sha384"), "sha256", 1, CLIENT, purpose=factors.SADPurpose.HASH)
    assert [e.action for e in _audit(pki)][-2:] == ["activation:authorize:deny"] * 2


def _race(pki: Container, credential: str, token: str, hashes: list[bytes], threads: int = 4) -> list[str]:
    results: list[str] = []
    barrier = threading.Barrier(threads)

    def use() -> None:
        barrier.wait()
        try:
            factors.consume(pki.pki, credential, token, hashes, actor=CLIENT, purpose=factors.SADPurpose.HASH)
            results.append("ok")
        except InvalidSAD:
            results.append("refused")
        except Exception as exc:  # noqa: BLE001 - SQLite may answer "busy": refused, never granted twice
            results.append(type(exc).__name__)

    workers = [threading.Thread(target=use) for _ in range(threads)]
    for t in workers:
        t.start()
    for t in workers:
        t.join()
    return results


def test_two_concurrent_uses_of_one_sad_cannot_both_pass(pki: Container, enrolled: tuple[str, Phone],
                                                         frozen: FrozenClock) -> None:
    credential, phone = enrolled
    hashes = some_hashes(1)
    for _ in range(3):
        sad = factors.authorize(pki.pki, credential, PIN, phone.code(), hashes, "sha256", 1, CLIENT, purpose=factors.SADPurpose.HASH)
        frozen.next_step()
        results = _race(pki, credential, sad.token, hashes)
        assert results.count("ok") == 1, results
