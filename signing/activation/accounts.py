"""Who a specialist is when she signs in on her phone: her CCCD number (the ``serialNumber``
``IDCVN-…`` of her certificate subject, ``pki.names.SubjectInfo.id_number``) or a short username an
operator gives one of her credentials; never the 29-character credential id. One person may hold
several credentials (a renewal, a second commune): she signs in with the factors of one of them
and chooses among them after.
"""
from __future__ import annotations

import re

from cryptography import x509
from cryptography.x509.oid import NameOID
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core import audit, clock
from core.db import transaction
from core.errors import Conflict, InvalidInput
from pki.context import PkiContext
from pki.models import Certificate, Credential, CredentialStatus
from pki.store import get_credential
from signing.activation.models import SpecialistLogin
from signing.material import SIGNING_PROFILES

USERNAME = re.compile(r"^[a-z][a-z0-9._-]{2,31}$")
CCCD = re.compile(r"^\d{9}$|^\d{12}$")
_SERIAL = re.compile(r"^IDCVN-(\d{9}|\d{12})$")


class UsernameTaken(Conflict):
    code = "username_taken"


def id_number(subject: str) -> str | None:
    """The CCCD number in an RFC 4514 subject string, if any: the value of its one serialNumber attribute,
    parsed as a name (never searched as text: a free-text attribute such as an e-mail address or a title may
    spell ``\\,2.5.4.5=IDCVN-<someone else's number>`` with an escaped comma)."""
    try:
        name = x509.Name.from_rfc4514_string(subject)
    except ValueError:
        return None
    values = [str(a.value) for a in name.get_attributes_for_oid(NameOID.SERIAL_NUMBER)]
    found = _SERIAL.match(values[0]) if len(values) == 1 else None
    return found.group(1) if found else None


def person_of(credential: Credential) -> str:
    """The throttle and session key of the person holding ``credential``."""
    number = id_number(credential.certificate.subject) if credential.certificate else None
    return f"cccd:{number}" if number else f"cred:{credential.id}"


def person_key(session: Session, credential_id: str) -> str:
    credential = session.get(Credential, credential_id)
    return person_of(credential) if credential is not None else f"cred:{credential_id}"


def _usable(session: Session) -> list[Credential]:
    query = (select(Credential).join(Certificate, Credential.certificate_id == Certificate.id)
             .where(Credential.status == CredentialStatus.ACTIVE, Certificate.profile.in_(SIGNING_PROFILES)))
    return list(session.execute(query).scalars())


def credentials_of_person(session: Session, person: str) -> list[Credential]:
    """The active signing credentials of a person key, newest certificate first."""
    if person.startswith("cred:"):
        credential = session.get(Credential, person.removeprefix("cred:"))
        found = [credential] if credential is not None and credential.status == CredentialStatus.ACTIVE else []
    elif person.startswith("cccd:"):
        number = person.removeprefix("cccd:")
        query = (select(Credential).join(Certificate, Credential.certificate_id == Certificate.id)
                 .where(Credential.status == CredentialStatus.ACTIVE, Certificate.profile.in_(SIGNING_PROFILES),
                        Certificate.subject.like(f"%IDCVN-{number}%")))
        found = [c for c in session.execute(query).scalars()
                 if c.certificate is not None and id_number(c.certificate.subject) == number]
    else:
        found = []
    return sorted(found, key=lambda c: c.certificate.issued_at if c.certificate else c.created_at, reverse=True)


def resolve(session: Session, identifier: str) -> tuple[str | None, list[Credential]]:
    """The person key and active signing credentials an identifier (CCCD or username) names;
    ``(None, [])`` for an identifier that names nobody (the caller answers it like a wrong PIN)."""
    text = identifier.strip().lower().replace(" ", "")
    if CCCD.match(text):
        person = f"cccd:{text}"
        found = credentials_of_person(session, person)
        return (person, found) if found else (None, [])
    if USERNAME.match(text):
        login = session.get(SpecialistLogin, text)
        if login is None:
            return None, []
        credential = session.get(Credential, login.credential_id)
        if credential is None or credential.status != CredentialStatus.ACTIVE:
            return None, []
        person = person_of(credential)
        return person, credentials_of_person(session, person)
    return None, []


def set_username(ctx: PkiContext, credential_id: str, username: str, actor: str) -> str:
    """Give a credential its sign-in name (3-32 characters: a-z, digits, '.', '_', '-'; unique), replacing
    any it had; audited."""
    name = username.strip().lower()
    if not USERNAME.match(name):
        raise InvalidInput("a username is 3 to 32 characters: lower-case letters, digits, '.', '_' or '-', "
                           "starting with a letter")
    try:
        with transaction(ctx.sessions) as session:
            credential = get_credential(session, credential_id)
            if credential.certificate is None or credential.certificate.profile not in SIGNING_PROFILES:
                raise InvalidInput(f"credential {credential_id} does not sign documents; it takes no username")
            taken = session.get(SpecialistLogin, name)
            if taken is not None and taken.credential_id != credential_id:
                raise UsernameTaken(f"the username {name!r} belongs to another credential; choose another")
            old = session.execute(select(SpecialistLogin).where(SpecialistLogin.credential_id == credential_id)
                                  ).scalar_one_or_none()
            previous = old.username if old is not None else None
            if old is not None and old.username != name:
                session.delete(old)
                session.flush()
            if previous != name:
                session.add(SpecialistLogin(username=name, credential_id=credential_id, set_by=actor,
                                            set_at=clock.now()))
            audit.record(session, actor=actor, action="activation:username:set", subject=credential_id,
                         username=name, previous=previous)
    except IntegrityError as exc:
        raise UsernameTaken(f"the username {name!r} belongs to another credential; choose another") from exc
    return name


def username_of(session: Session, credential_id: str) -> str | None:
    return session.execute(select(SpecialistLogin.username)
                           .where(SpecialistLogin.credential_id == credential_id)).scalar_one_or_none()
