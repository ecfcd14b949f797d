"""Draws the demo's sample handwritten signature (blue) and agency seal (red), transparent PNGs.

Run: python -m signing.assets.make_samples — the PNGs are committed; this shows how they were made.
"""
from __future__ import annotations

import math
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

HERE = Path(__file__).parent
FONT = "/usr/share/fonts/truetype/liberation2/LiberationSerif-Bold.ttf"


def signature() -> Image.Image:
    image = Image.new("RGBA", (600, 200), (0, 0, 0, 0))
    draw = ImageDraw.Draw(image)
    points = [(30 + t * 5.4, 110 + 55 * math.sin(t / 6.5) * math.cos(t / 17)) for t in range(100)]
    draw.line(points, fill=(25, 45, 170, 255), width=7, joint="curve")
    draw.line([(120, 165), (520, 150)], fill=(25, 45, 170, 255), width=5)
    return image


def seal(dpi: int = 300, diameter_mm: float = 36) -> Image.Image:
    size = round(diameter_mm / 25.4 * dpi)
    image = Image.new("RGBA", (size, size), (0, 0, 0, 0))
    draw = ImageDraw.Draw(image)
    red = (210, 20, 30, 235)
    draw.ellipse([6, 6, size - 6, size - 6], outline=red, width=14)
    draw.ellipse([size * 0.18, size * 0.18, size * 0.82, size * 0.82], outline=red, width=6)
    font = ImageFont.truetype(FONT, round(size * 0.075))
    for line, y in (("ỦY BAN NHÂN DÂN", 0.36), ("PHƯỜNG", 0.47), ("BA ĐÌNH", 0.58)):
        draw.text((size / 2, size * y), line, fill=red, font=font, anchor="mm")
    return image


if __name__ == "__main__":
    signature().save(HERE / "sample-signature.png", dpi=(300, 300))
    seal().save(HERE / "sample-seal.png", dpi=(300, 300))
