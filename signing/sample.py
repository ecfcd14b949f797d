"""A one-page sample document (Vietnamese text, embedded font) for the demo and the benchmarks."""
from __future__ import annotations

from io import BytesIO
from pathlib import Path

from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.content import RawContent
from pyhanko.pdf_utils.font.opentype import GlyphAccumulatorFactory
from pyhanko.pdf_utils.text import TextBox, TextBoxStyle
from pyhanko.pdf_utils.writer import PdfFileWriter

LINES = (
    "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM",
    "Độc lập - Tự do - Hạnh phúc",
    "",
    "KẾT QUẢ GIẢI QUYẾT HỒ SƠ (MẪU)",
    "",
    "Ủy ban nhân dân phường Ba Đình xác nhận hồ sơ số HS-2026-000123",
    "của ông/bà Nguyễn Văn An đã được giải quyết theo quy định.",
    "",
    "Tài liệu mẫu do kyso tạo để thử ký số; không có giá trị pháp lý.",
)


def sample_document(font: Path, lines: tuple[str, ...] = LINES) -> bytes:
    """An A4 page of text set in ``font`` (a Unicode TrueType font, embedded as a subset)."""
    writer = PdfFileWriter()
    style = TextBoxStyle(font=GlyphAccumulatorFactory(str(font)), font_size=12, leading=18)
    box = TextBox(style, writer=writer, box=None)
    box.content = "\n".join(lines)
    width, height = 595, 842
    content = RawContent(b"q 1 0 0 1 72 620 cm " + box.render() + b" Q", resources=box.resources,
                         box=None)
    writer.insert_page(generic.DictionaryObject({
        generic.pdf_name("/Type"): generic.pdf_name("/Page"),
        generic.pdf_name("/MediaBox"): generic.ArrayObject(map(generic.NumberObject, (0, 0, width, height))),
        generic.pdf_name("/Resources"): content.resources.as_pdf_object(),
        generic.pdf_name("/Contents"): writer.add_object(generic.StreamObject(stream_data=content.render())),
    }))
    out = BytesIO()
    writer.write(out)
    return out.getvalue()
