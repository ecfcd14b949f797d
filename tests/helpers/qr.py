"""Read QR codes back from rendered pages with zbarimg, a reader nobody here wrote.

zbarimg tries every symbology it knows by default; a stamp's lines of text or an image's stripes can then
read as a one-dimensional barcode. The stamp carries a QR code only, and phones scan it as one."""
from __future__ import annotations

import subprocess
from pathlib import Path

from tests.interop.pdf_tools import tool

QR_ONLY = ("-Sdisable", "-Sqrcode.enable")


def scan(*pictures: Path) -> list[str]:
    """Every QR code zbarimg reads in ``pictures``, in order (none read: an empty list)."""
    result = subprocess.run([tool("zbarimg", "zbar-tools"), "-q", "--raw", *QR_ONLY, *map(str, pictures)],
                            capture_output=True, check=False, timeout=120)
    return result.stdout.decode().split()
