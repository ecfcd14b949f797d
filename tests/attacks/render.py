"""Looking at a page as a person would: poppler's ``pdftoppm`` renders it, Pillow compares two renderings.

Boxes are in PDF points of the page, origin bottom-left (as ``VisualDifference.box``), so a difference
found here can be laid over the box a verification report names."""
from __future__ import annotations

import subprocess
import tempfile
from io import BytesIO
from pathlib import Path

from PIL import Image, ImageChops

DPI = 50
Box = tuple[float, float, float, float]


def render(pdf: bytes, page: int = 1, dpi: int = DPI) -> Image.Image:
    """Page ``page`` (1-based) as an RGB image, rendered by pdftoppm."""
    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / "in.pdf"
        source.write_bytes(pdf)
        done = subprocess.run(["pdftoppm", "-r", str(dpi), "-png", "-f", str(page), "-l", str(page), "-singlefile",
                               str(source), str(Path(tmp) / "out")], capture_output=True, timeout=60)
        assert done.returncode == 0, done.stderr.decode(errors="replace")
        return Image.open(BytesIO((Path(tmp) / "out.png").read_bytes())).convert("RGB")


def difference_box(before: Image.Image, after: Image.Image, dpi: int = DPI) -> Box | None:
    """Where ``after`` differs from ``before``, in PDF points (origin bottom-left), or None."""
    if before.size != after.size:
        after = after.resize(before.size)
    pixels = ImageChops.difference(before, after).convert("L").point(lambda v: 255 if v > 16 else 0).getbbox()
    if pixels is None:
        return None
    scale = 72 / dpi
    height = before.size[1] * scale
    left, top, right, bottom = pixels
    return (left * scale, height - bottom * scale, right * scale, height - top * scale)


def intersects(a: Box, b: Box) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]
