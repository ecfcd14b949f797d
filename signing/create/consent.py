"""What creating a signature asks of whoever vouches for the key holder's consent.

``signing.activation`` implements it (a specialist's SAD, or "none needed" for a seal); creating
signatures depends only on this shape, so the arrow runs activation → create and never back.
"""
from __future__ import annotations

from typing import Protocol

from signing.material import SignerMaterial


class Activation(Protocol):
    """Consent for one document: ``spend`` returns when signing ``pdf`` with ``material`` is
    authorized, and raises a domain error (audited by the implementation) when it is not."""

    def spend(self, material: SignerMaterial, pdf: bytes) -> None: ...
