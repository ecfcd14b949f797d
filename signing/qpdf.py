"""qpdf (pikepdf) over bytes in memory, read by qpdf itself.

pikepdf reads a ``BytesIO`` through a Python call for every read qpdf makes, and qpdf makes many small ones
while it parses: opening a 1,000-page file, walking its pages and resolving every object took 54 ms from a
``BytesIO`` against 12 ms from a file (measured by hand on the same bytes; the signing figures of ``make
bench`` include it). kyso opens every input (intake) and every output (self-check) this way, so the bytes go
into an anonymous in-memory file (``memfd_create``: never on disk, gone when closed) that qpdf opens by its
``/proc/self/fd`` path. Where that is not available, the ``BytesIO`` as before: same answers, slower.
"""
from __future__ import annotations

import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from io import BytesIO
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pikepdf

_PROC_FD = os.path.isdir("/proc/self/fd")  # how qpdf opens the memory file by path; looked up once
_SOURCE = re.compile(r"^(?:stream <[^>]*>|/proc/self/fd/\d+)(?=[:,( ]|$):?\s*")


@contextmanager
def opened(data: bytes, **options: Any) -> Iterator[pikepdf.Pdf]:
    """``pikepdf.open`` over ``data`` (``options`` as pikepdf takes them), closed on leaving."""
    import pikepdf

    fd = _memory_file(data)
    if fd is None:
        with pikepdf.open(BytesIO(data), **options) as document:
            yield document
        return
    try:
        with pikepdf.open(f"/proc/self/fd/{fd}", **options) as document:
            yield document
    finally:
        os.close(fd)


def _memory_file(data: bytes) -> int | None:
    """A file descriptor of an anonymous in-memory file holding ``data``, or None where there is none."""
    create = getattr(os, "memfd_create", None)
    if create is None or not _PROC_FD:
        return None
    try:
        fd: int = create("kyso-pdf", getattr(os, "MFD_CLOEXEC", 0))
    except OSError:
        return None
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        os.lseek(fd, 0, os.SEEK_SET)
    except OSError:
        os.close(fd)
        return None
    return fd


def plain(message: str) -> str:
    """A qpdf message without the name of the in-memory file or stream it read from."""
    return _SOURCE.sub("", message)[:160]


__all__ = ["opened", "plain"]
