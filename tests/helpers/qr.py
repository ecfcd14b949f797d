"""zbarimg reads every symbology it knows by default; a stamp's lines of text or an image's stripes can
then read as a one-dimensional barcode. The stamp carries a QR code only, and phones scan it as one."""
from __future__ import annotations

QR_ONLY = ("-Sdisable", "-Sqrcode.enable")
