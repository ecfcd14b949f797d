"""The cheap count that comes before the costly work: a file with more signatures or revisions than kyso
verifies is refused (``TooComplex``, HTTP 422) before any signature is parsed or validated.

Validation cost grows with each signature (CMS parsing, chain building, difference analysis per later
revision), and a public verifier lets anyone choose that cost: a 159 KB file with 40 self-signed
signatures once took ~45 s of CPU. Counting signature fields and xref sections touches only the
structure pyHanko has already read to open the file. Limits come from ``verify_max_signatures`` and
``verify_max_revisions``; the verifier calls ``check_limits`` right after opening the file.
"""
from __future__ import annotations

from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.fields import enumerate_sig_fields

from signing.errors import TooComplex, UnreadablePdf


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
