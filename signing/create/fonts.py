"""Embedded TrueType fonts for signature stamps, fast enough to run for every signature.

pyHanko's ``GlyphAccumulator`` shapes text with HarfBuzz and embeds a Type0/CIDFontType2 subset,
but it parses the whole font and runs fontTools' subsetter for every stamp (~30 ms per font). Here
the font is parsed once per process (``FontProgram``); each stamp gets a ``StampFontEngine`` — a
``GlyphAccumulator`` that reuses pyHanko's shaping and ToUnicode code, numbers the glyphs it meets
1, 2, 3… (CID = glyph index in the embedded subset) and writes the subset by copying the glyph
outlines it needs straight out of the font's ``glyf`` table (composite glyphs pull their
components in). The result is a small, correct TrueType program, built in well under 1 ms.
"""
from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import uharfbuzz as hb
from fontTools import ttLib
from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.font.api import FontEngine
from pyhanko.pdf_utils.font.opentype import GlyphAccumulator
from pyhanko.pdf_utils.generic import pdf_name
from pyhanko.pdf_utils.writer import BasePdfFileWriter

from core.errors import ConfigurationError

# Every letter Vietnamese writes; a stamp font that misses one of them would print boxes.
VIETNAMESE_LETTERS = (
    "ÀÁÂÃÈÉÊÌÍÒÓÔÕÙÚÝàáâãèéêìíòóôõùúýĂăĐđĨĩŨũƠơƯưẠạẢảẤấẦầẨẩẪẫẬậẮắẰằẲẳẴẵẶặẸẹẺẻẼẽẾếỀềỂểỄễỆệ"
    "ỈỉỊịỌọỎỏỐốỒồỔổỖỗỘộỚớỜờỞởỠỡỢợỤụỦủỨứỪừỬửỮữỰựỲỳỴỵỶỷỸỹ"
)
# Debian's fonts-liberation (1.07) lacks most of them; fonts-liberation2 (2.x, same metrics) has all.
_LIBERATION1 = Path("/usr/share/fonts/truetype/liberation")
_LIBERATION2 = Path("/usr/share/fonts/truetype/liberation2")
# Tables a CIDFontType2 program needs (ISO 32000-1 §9.9) plus the hinting programs and small metadata.
_KEPT_TABLES = (b"OS/2", b"cvt ", b"fpgm", b"glyf", b"head", b"hhea", b"hmtx", b"loca", b"maxp",
                b"name", b"post", b"prep")


def _checksum(data: bytes) -> int:
    padded = data + b"\0" * (-len(data) % 4)
    words: tuple[int, ...] = struct.unpack(f">{len(padded) // 4}I", padded)
    return sum(words) & 0xFFFFFFFF


class FontProgram:
    """A TrueType font parsed once per process; immutable afterwards, so threads may share it."""

    def __init__(self, path: Path) -> None:
        data = path.read_bytes()
        tt = ttLib.TTFont(path, lazy=True)
        if "glyf" not in tt:
            raise ConfigurationError(f"The stamp font {path} is not a TrueType (glyf) font; "
                                     "set KYSO_STAMP_FONT to a .ttf file such as Liberation Serif")
        self.path = path
        self.ps_name = _read_ps_name(tt)
        self.units_per_em: int = tt["head"].unitsPerEm
        self.glyph_order: list[str] = tt.getGlyphOrder()
        self.advances: list[int] = [tt["hmtx"][name][0] for name in self.glyph_order]
        self.cmap: dict[int, str] = tt.getBestCmap()
        self.reverse_cmap: dict[str, set[int]] = tt["cmap"].buildReversed()
        head, hhea, os2 = tt["head"], tt["hhea"], tt["OS/2"]
        self.bbox = (head.xMin, head.yMin, head.xMax, head.yMax)
        self.ascent, self.descent = hhea.ascent, hhea.descent
        self.cap_height = getattr(os2, "sCapHeight", 700) or 700
        self.stem_v = int(10 + 220 * (os2.usWeightClass - 50) / 900)
        self.italic_angle = float(getattr(tt["post"], "italicAngle", 0))
        self.hb_font = hb.Font(hb.Face(data))
        # raw tables, for the subsetter
        (num_tables,) = struct.unpack_from(">H", data, 4)
        self._tables: dict[bytes, bytes] = {}
        for i in range(num_tables):
            tag, _, offset, length = struct.unpack_from(">4sIII", data, 12 + 16 * i)
            self._tables[tag] = data[offset:offset + length]
        loc_format = struct.unpack_from(">h", self._tables[b"head"], 50)[0]
        loca = self._tables[b"loca"]
        n = len(self.glyph_order) + 1
        self._loca = (struct.unpack(f">{n}I", loca[:4 * n]) if loc_format
                      else tuple(2 * x for x in struct.unpack(f">{n}H", loca[:2 * n])))

    def missing(self, text: str) -> str:
        """The characters of ``text`` this font cannot draw."""
        return "".join(sorted({c for c in text if not c.isspace() and ord(c) not in self.cmap}))

    def shape(self, text: str) -> hb.Buffer:
        buf = hb.Buffer()
        buf.add_str(text)
        buf.guess_segment_properties()
        hb.shape(self.hb_font, buf)
        return buf

    def width(self, text: str, size: float) -> float:
        """Advance width of ``text`` at ``size`` points, as HarfBuzz lays it out."""
        if not text:
            return 0.0
        advance: int = sum(p.x_advance for p in self.shape(text).glyph_positions)
        return advance * size / self.units_per_em

    def _glyph(self, gid: int) -> bytes:
        return self._tables[b"glyf"][self._loca[gid]:self._loca[gid + 1]]

    def subset(self, gids: list[int]) -> tuple[bytes, list[int]]:
        """A TrueType program holding ``gids`` renumbered 0, 1, 2…, plus the components composites use.

        ``gids[0]`` must be 0 (.notdef). Returns the font bytes and the full new glyph order (old ids).
        """
        order = list(gids)
        new_id = {g: i for i, g in enumerate(order)}
        pieces: list[bytes] = []
        i = 0
        while i < len(order):
            glyph = self._glyph(order[i])
            if len(glyph) >= 10 and struct.unpack_from(">h", glyph, 0)[0] < 0:
                composite = bytearray(glyph)
                pos = 10
                while True:
                    flags, component = struct.unpack_from(">HH", composite, pos)
                    if component not in new_id:
                        new_id[component] = len(order)
                        order.append(component)
                    struct.pack_into(">H", composite, pos + 2, new_id[component])
                    pos += 4 + (4 if flags & 0x1 else 2)
                    pos += 2 if flags & 0x8 else 4 if flags & 0x40 else 8 if flags & 0x80 else 0
                    if not flags & 0x20:
                        break
                glyph = bytes(composite)
            pieces.append(glyph + b"\0" * (-len(glyph) % 4))
            i += 1
        offsets = [0]
        for piece in pieces:
            offsets.append(offsets[-1] + len(piece))
        count = len(order)
        tables = {tag: self._tables[tag] for tag in _KEPT_TABLES if tag in self._tables}
        tables[b"glyf"] = b"".join(pieces)
        tables[b"loca"] = struct.pack(f">{count + 1}I", *offsets)
        tables[b"hmtx"] = b"".join(struct.pack(">Hh", self.advances[g], 0) for g in order)
        head = bytearray(tables[b"head"])
        struct.pack_into(">I", head, 8, 0)  # checkSumAdjustment, fixed below
        struct.pack_into(">h", head, 50, 1)  # long loca
        tables[b"head"] = bytes(head)
        hhea = bytearray(tables[b"hhea"])
        struct.pack_into(">H", hhea, 34, count)
        tables[b"hhea"] = bytes(hhea)
        maxp = bytearray(tables[b"maxp"])
        struct.pack_into(">H", maxp, 4, count)
        tables[b"maxp"] = bytes(maxp)
        if b"post" in tables:  # format 3: no glyph names
            tables[b"post"] = b"\x00\x03\x00\x00" + tables[b"post"][4:32]
        return _assemble_sfnt(tables), order


def _assemble_sfnt(tables: dict[bytes, bytes]) -> bytes:
    tags = sorted(tables)
    n = len(tags)
    entry_selector = n.bit_length() - 1
    search_range = 16 << entry_selector
    header = struct.pack(">IHHHH", 0x00010000, n, search_range, entry_selector, n * 16 - search_range)
    offset = 12 + 16 * n
    directory, body = [], []
    for tag in tags:
        data = tables[tag]
        directory.append(struct.pack(">4sIII", tag, _checksum(data), offset, len(data)))
        padded = data + b"\0" * (-len(data) % 4)
        body.append(padded)
        offset += len(padded)
    font = bytearray(header + b"".join(directory) + b"".join(body))
    head_offset = 12 + 16 * n + sum(len(b) for t, b in zip(tags, body, strict=True) if t < b"head")
    struct.pack_into(">I", font, head_offset + 8, (0xB1B0AFBA - _checksum(bytes(font))) & 0xFFFFFFFF)
    return bytes(font)


def _read_ps_name(tt: ttLib.TTFont) -> str:
    name = tt["name"].getDebugName(6) or Path(tt.reader.file.name).stem
    return "".join(c for c in name if c.isalnum() or c in "-_") or "StampFont"


class _GlyphNames:
    """Stands in for the ``TTFont`` that ``GlyphAccumulator.shape`` asks for glyph names."""

    def __init__(self, program: FontProgram) -> None:
        self._order = program.glyph_order

    def getGlyphName(self, gid: int) -> str:  # fontTools' name
        return self._order[gid]


@lru_cache(maxsize=128)  # kept: pure (a font program and its glyphs → the compressed subset), bounded (~20 kB each)
def _font_file(program: FontProgram, gids: tuple[int, ...]) -> tuple[int, bytes]:
    """The subset of ``program`` holding ``gids`` (in that order), its length and its Flate-compressed bytes: a
    signer's name and title and the caption come back with every stamp, and need subsetting only once."""
    font_bytes, _ = program.subset(list(gids))
    return len(font_bytes), zlib.compress(font_bytes, 6)


class StampFontEngine(GlyphAccumulator):
    """pyHanko's glyph accumulator over a shared ``FontProgram``: same shaping, cheap embedding."""

    def __init__(self, writer: BasePdfFileWriter, program: FontProgram, font_size: float = 10) -> None:
        # pyHanko annotates FontEngine's font_size as int, yet its OpenType engine computes with a float one
        FontEngine.__init__(self, writer, program.ps_name, embedded_subset=True,
                            font_size=font_size)  # type: ignore[arg-type]
        self.program = program
        self.hb_font = program.hb_font
        self.tt = _GlyphNames(program)
        self.units_per_em = program.units_per_em
        self.features = None
        self.ot_language_tag = self.ot_script_tag = self.writing_direction = None
        self.bcp47_lang_code = "vi"
        self._glyphs: dict[int, tuple[int, int]] = {0: (0, program.advances[0])}
        self._cid_to_unicode: dict[int, str] = {}
        self._font_ref = writer.allocate_placeholder()
        self._write_prepared = False

    @property
    def _reverse_cmap(self) -> dict[str, set[int]]:
        return self.program.reverse_cmap

    def _get_cid_and_width(self, glyph_id: int) -> tuple[int, int]:
        try:
            return self._glyphs[glyph_id]
        except KeyError:
            result = self._glyphs[glyph_id] = (len(self._glyphs), self.program.advances[glyph_id])
            return result

    def line(self, text: str) -> tuple[bytes, float]:
        """Text-showing operators for one line, and its width in points."""
        shaped = self.shape(text)
        return shaped.graphics_ops, shaped.x_advance * self.font_size

    def prepare_write(self) -> None:
        if self._write_prepared:
            return
        self._write_prepared = True
        writer, program = self.writer, self.program
        by_cid = sorted(self._glyphs.items(), key=lambda item: item[1][0])
        length, compressed = _font_file(program, tuple(gid for gid, _ in by_cid))
        font_file = generic.StreamObject(
            {pdf_name("/Length1"): generic.NumberObject(length),
             pdf_name("/Filter"): pdf_name("/FlateDecode")},
            encoded_data=compressed)
        name = f"{self.subset_prefix}+{program.ps_name}"
        scale = 1000 / program.units_per_em
        descriptor = generic.DictionaryObject({
            pdf_name("/Type"): pdf_name("/FontDescriptor"),
            pdf_name("/FontName"): pdf_name("/" + name),
            pdf_name("/Flags"): generic.NumberObject(0b110),  # serif, symbolic (CID-keyed)
            pdf_name("/FontBBox"): generic.ArrayObject(
                generic.NumberObject(round(v * scale)) for v in program.bbox),
            pdf_name("/ItalicAngle"): generic.FloatObject(program.italic_angle),
            pdf_name("/Ascent"): generic.NumberObject(round(program.ascent * scale)),
            pdf_name("/Descent"): generic.NumberObject(round(program.descent * scale)),
            pdf_name("/CapHeight"): generic.NumberObject(round(program.cap_height * scale)),
            pdf_name("/StemV"): generic.NumberObject(program.stem_v),
            pdf_name("/FontFile2"): writer.add_object(font_file),
        })
        widths = generic.ArrayObject([generic.NumberObject(0), generic.ArrayObject(
            generic.NumberObject(round(width * scale)) for _, (_, width) in by_cid)])
        cid_font = generic.DictionaryObject({
            pdf_name("/Type"): pdf_name("/Font"),
            pdf_name("/Subtype"): pdf_name("/CIDFontType2"),
            pdf_name("/BaseFont"): pdf_name("/" + name),
            pdf_name("/CIDSystemInfo"): generic.DictionaryObject({
                pdf_name("/Registry"): generic.pdf_string("Adobe"),
                pdf_name("/Ordering"): generic.pdf_string("Identity"),
                pdf_name("/Supplement"): generic.NumberObject(0)}),
            pdf_name("/FontDescriptor"): writer.add_object(descriptor),
            pdf_name("/CIDToGIDMap"): pdf_name("/Identity"),
            pdf_name("/W"): widths,
        })
        type0 = generic.DictionaryObject({
            pdf_name("/Type"): pdf_name("/Font"),
            pdf_name("/Subtype"): pdf_name("/Type0"),
            pdf_name("/BaseFont"): pdf_name("/" + name),
            pdf_name("/Encoding"): pdf_name("/Identity-H"),
            pdf_name("/DescendantFonts"): generic.ArrayObject([writer.add_object(cid_font)]),
            # pyHanko's own method, unannotated there
            pdf_name("/ToUnicode"): writer.add_object(self._format_tounicode_cmap()),  # type: ignore[no-untyped-call]
        })
        writer.add_object(type0, idnum=self._font_ref.idnum)


@dataclass(frozen=True)
class StampFonts:
    """The regular and bold faces every stamp is set in."""

    regular: FontProgram
    bold: FontProgram


@lru_cache(maxsize=8)  # kept: a font file (packaged or configured, read-only) parsed once, bounded
def _load_program(path: Path) -> FontProgram:
    return FontProgram(path)


def _resolve(path: Path) -> Path:
    """Liberation 1.x lacks Vietnamese; use the same face from fonts-liberation2 when it is installed."""
    if path.parent == _LIBERATION1 and (_LIBERATION2 / path.name).is_file():
        return _LIBERATION2 / path.name
    return path


def load_stamp_fonts(regular: Path, bold: Path) -> StampFonts:
    """Load (once per process) the configured stamp fonts; refuse fonts that cannot write Vietnamese."""
    programs = []
    for setting, path in (("KYSO_STAMP_FONT", regular), ("KYSO_STAMP_FONT_BOLD", bold)):
        path = _resolve(Path(path))
        if not path.is_file():
            raise ConfigurationError(
                f"The stamp font {path} does not exist: install Debian's fonts-liberation2 (or "
                f"fonts-liberation) or set {setting} to a TrueType font with Vietnamese letters",
                setting=setting)
        try:
            program = _load_program(path)
        except ConfigurationError:
            raise
        except Exception as exc:  # fontTools raises many types for a damaged file
            raise ConfigurationError(f"The stamp font {path} cannot be read ({exc}); set {setting} "
                                     "to a TrueType font file", setting=setting) from exc
        missing = program.missing(VIETNAMESE_LETTERS)
        if missing:
            raise ConfigurationError(
                f"The stamp font {path} has no glyphs for {len(missing)} Vietnamese letters "
                f"(e.g. {missing[:8]}): install Debian's fonts-liberation2 or set {setting} to a font "
                "that covers Vietnamese", setting=setting)
        programs.append(program)
    return StampFonts(*programs)
