"""Who a bearer token is (its role) and what a client token may do (its operations).

Kept apart from ``api.tokens`` (which needs SQLAlchemy and the policies) so the command line can offer
them as choices without loading the database layer for `kyso token --help`.
"""
from __future__ import annotations

import enum


class Role(str, enum.Enum):
    """ca-operator runs the PKI; policy-admin changes the signing policy (and nothing else); auditor reads
    everything including the audit log; read-only reads certificates, documents and the policy; client is
    civil-registration or dossier software (signing, its own communes' documents)."""

    ca_operator = "ca-operator"
    policy_admin = "policy-admin"
    auditor = "auditor"
    read_only = "read-only"
    client = "client"


class Operation(str, enum.Enum):
    """What a client token may do with the documents of its communes."""

    sign = "sign"
    read = "read"
    withdraw = "withdraw"
    supersede = "supersede"
