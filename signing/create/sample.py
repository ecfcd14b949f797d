"""A one-page sample document (Vietnamese text, embedded font) for the demo and the benchmarks."""
from __future__ import annotations

from io import BytesIO
from pathlib import Path

from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.generic import pdf_name
from pyhanko.pdf_utils.writer import PdfFileWriter

from signing.create.fonts import StampFontEngine, load_stamp_fonts

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


def sample_document(font: Path, lines: tuple[str, ...] = LINES, top: float = 760) -> bytes:
    """An A4 page of text set in ``font`` (a Unicode TrueType font, embedded as a subset)."""
    writer = PdfFileWriter()
    engine = StampFontEngine(writer, load_stamp_fonts(font, font).regular, 12)
    ops = []
    for number, line in enumerate(lines):
        if line:
            ops.append(b"BT /F1 12 Tf 72 %d Td %s ET" % (top - 18 * number, engine.line(line)[0]))
    writer.insert_page(generic.DictionaryObject({
        pdf_name("/Type"): pdf_name("/Page"),
        pdf_name("/MediaBox"): generic.ArrayObject(map(generic.NumberObject, (0, 0, 595, 842))),
        pdf_name("/Resources"): generic.DictionaryObject({
            pdf_name("/Font"): generic.DictionaryObject({pdf_name("/F1"): engine.as_resource()})}),
        pdf_name("/Contents"): writer.add_object(generic.StreamObject(stream_data=b"\n".join(ops))),
    }))
    out = BytesIO()
    writer.write(out)
    return out.getvalue()
