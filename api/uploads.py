"""Reading an uploaded PDF: bounded in memory, and refused early when it is not a PDF at all."""
from __future__ import annotations

from fastapi import UploadFile

from signing.errors import PdfTooLarge, UnreadablePdf


async def read_pdf(upload: UploadFile, limit: int) -> bytes:
    """At most ``limit`` bytes; a file without a ``%PDF-`` header in its first kilobyte is not read further."""
    return checked_pdf(await upload.read(limit + 1), limit, upload.filename or "the file")


def checked_pdf(data: bytes, limit: int, name: str) -> bytes:
    """The same checks for a PDF sent as the request body itself (``Content-Type: application/pdf``)."""
    if len(data) > limit:
        raise PdfTooLarge(f"{name} is larger than the {limit:,}-byte limit")
    if b"%PDF-" not in data[:1024]:
        raise UnreadablePdf(f"{name} is not a PDF (no %PDF- header)" if data else f"{name} is empty")
    return data
