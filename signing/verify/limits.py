"""The cheap count that comes before the costly work: a file with more signatures or revisions than kyso
verifies is refused (``TooComplex``, HTTP 422) before any signature is parsed or validated.

Validation cost grows with each signature (CMS parsing, chain building, difference analysis per later
revision), and a public verifier lets anyone choose that cost: a 159 KB file with 40 self-signed
signatures once took ~45 s of CPU. Counting signature fields and xref sections touches only the
structure pyHanko has already read to open the file. Limits come from ``verify_max_signatures`` and
``verify_max_revisions``; the verifier calls ``check_limits`` right after opening the file.
"""
from __future__ import annotations

import time

from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.fields import enumerate_sig_fields

from signing.errors import TooComplex, UnreadablePdf


class Budget:
    """The work one verification may do, counted in this thread's CPU seconds: what the file itself
    costs, whatever else the machine is doing, so a busy server never calls a sound file "too complex".
    A wall-clock cap ``wall_factor`` times larger still frees the slot when the thread mostly waits.
    Verification runs on one thread (pyHanko's loop runs on the caller's thread, see ``signing.loop``)."""

    def __init__(self, seconds: float, *, wall_factor: float = 3.0) -> None:
        self.seconds = seconds
        self._cpu_end = time.thread_time() + seconds
        self._wall_end = time.monotonic() + seconds * wall_factor

    def remaining(self) -> float:
        """Seconds left, by whichever clock runs out first (never negative)."""
        return max(0.0, min(self._cpu_end - time.thread_time(), self._wall_end - time.monotonic()))

    def spent(self) -> bool:
        return time.thread_time() > self._cpu_end or time.monotonic() > self._wall_end


def check_limits(reader: PdfFileReader, *, max_signatures: int, max_revisions: int) -> None:
    """Raise ``TooComplex`` when the file has more than ``max_revisions`` revisions or more than
    ``max_signatures`` filled signature fields (document timestamps count: they are validated too)."""
    revisions = reader.xrefs.total_revisions
    if revisions > max_revisions:
        raise TooComplex(f"this PDF has {revisions} revisions; kyso verifies files with at most {max_revisions} "
                         "(ask the sender for the file as it was signed)",
                         counted="revisions", found=revisions, limit=max_revisions)
    found = 0
    try:
        for _ in enumerate_sig_fields(reader, filled_status=True):
            found += 1
            if found > max_signatures:  # stop counting: a hostile file may hold thousands
                raise TooComplex(f"this PDF has more than {max_signatures} signatures; kyso verifies files with "
                                 f"at most {max_signatures}", counted="signatures", found=found, limit=max_signatures)
    except TooComplex:
        raise
    except Exception:  # noqa: BLE001 - pyHanko raises plain errors on a broken AcroForm
        raise UnreadablePdf("the PDF's signature fields cannot be read") from None
