"""Errors of the transparency log: a malformed or failing proof, note, tile or entry."""
from __future__ import annotations

from core.errors import InvalidInput, NotFound


class LogFormatError(InvalidInput):
    """Bytes that are not a well-formed entry, tile, checkpoint, note or proof."""

    code = "log_format"


class LogVerificationError(InvalidInput):
    """A signature, proof or recomputed hash does not match: the log or a copy of it lies."""

    code = "log_verification_failed"


class NotYetLogged(NotFound):
    """The event is recorded but the sequencer has not yet put it in a checkpoint."""

    code = "not_yet_logged"
