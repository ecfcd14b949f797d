"""Figure 8: the offline-seal QR code, per document type: its version (KS1 as printed before issue 19,
KS2 now) and the time to build it, kyso beside the raw library in the same run.

kyso: ``signing.create.visible._qr_path`` without its cache (zxing-cpp; level M, or L when the modules would be
too small; the matrix turned into PDF path operators). Raw: ``qrcode`` with its defaults
(``QRCode()``, ``add_data``, ``make(fit=True)``, ``get_matrix``: all eight masks scored) on the same
KS2 text. Other encoders, measured on the same text when installed:
``segno`` (byte + alphanumeric segments, fixed mask, not a kyso dependency) and bare ``zxing-cpp`` (what kyso
builds on, without turning the matrix into path operators).
"""
from __future__ import annotations

import datetime as dt
import hashlib
import statistics
import time
from collections.abc import Callable
from typing import Any

from .common import Figure, Results, say

SECTION = "9. offline-seal QR code (build time per code, version)"
BASE = "https://kyso.phuongbadinh.hanoi.gov.vn"
OWNER = "Nguyễn Thị Hồng Nhung"
TYPICAL: dict[str, tuple[tuple[str, str], ...]] = {  # as tests/signing/create/test_offline_seal.py TYPICAL
    "marital-status-certificate": (("holder", OWNER), ("reg_no", "123/2026")),
    "certified-copy": (("cert_no", "SCT/2026/000123"), ("original", "Bằng tốt nghiệp THPT")),
    "land-procedure-result": (("doc_no", "1234/QĐ-UBND"), ("holder", OWNER), ("parcel", "Thửa 123, tờ bản đồ số 45")),
    "dossier-result": (("dossier_no", "000.00.04.H26-261206-0001"), ("applicant", OWNER)),
    "construction-permit": (("permit_no", "125/GPXD-UBND"), ("owner", OWNER),
                            ("site", "Số 12 phố Kim Mã, phường Ba Đình, Hà Nội")),
}


def _ms(fn: Callable[[], Any], n: int, repeats: int) -> float:
    """Median over ``repeats`` rounds of the mean milliseconds per call."""
    fn()
    rounds = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(n):
            fn()
        rounds.append((time.perf_counter() - t0) / n * 1000)
    return statistics.median(rounds)


def run(results: Results, *, n: int, repeats: int) -> None:
    import qrcode

    from signing.create import offline_seal, visible
    from signing.create.offline_seal import SealFacts

    say(f"[8] offline-seal QR: {len(TYPICAL)} document types, {n} builds × {repeats} rounds each")
    build = visible._qr_path.__wrapped__
    try:
        import segno
    except ImportError:
        segno = None
    try:
        import zxingcpp
    except ImportError:
        zxingcpp = None
    for name, fields in TYPICAL.items():
        signature = hashlib.sha512(name.encode()).digest()  # as random as a real one
        facts = SealFacts("ABCDEFGHJKLM", name, "00004", dt.date(2026, 12, 6), fields)
        url = f"{BASE}/v/ABCDEFGHJKLM#"
        new = url + offline_seal.token2(offline_seal.encode2(facts, "AbCd-_12"), signature)
        old = url + offline_seal.b64url(offline_seal.encode(facts, "AbCd-_12")) + "." + offline_seal.b64url(signature)
        version_new, version_old = visible._qr_code(new).version, visible._qr_code(old).version

        def raw(text: str = new) -> None:
            code = qrcode.QRCode()
            code.add_data(text)
            code.make(fit=True)
            code.get_matrix()

        kyso_ms = _ms(lambda: build(new), n, repeats)
        raw_ms = _ms(raw, max(1, n // 4), repeats)
        results.add(Figure(SECTION, f"{name}: kyso, KS2 (v{version_new} M; KS1 was v{version_old})", kyso_ms, "ms",
                           "qrcode defaults", raw_ms, higher_is_better=False))
        old_ms = _ms(lambda: build(old), n, repeats)
        results.add(Figure(SECTION, f"{name}: kyso, the KS1 text (v{version_old})", old_ms, "ms",
                           "kyso, KS2", kyso_ms, higher_is_better=False))
        if segno is not None:
            prefix, token = new.split("#")

            def with_segno() -> None:
                code = segno.make_qr([((prefix + "#").encode(), segno.consts.MODE_BYTE),
                                      (token, segno.consts.MODE_ALPHANUMERIC)], error="m", boost_error=False, mask=4)
                list(code.matrix_iter(border=0))

            results.add(Figure(SECTION, f"{name}: segno (not used)", _ms(with_segno, n, repeats), "ms",
                               "kyso, KS2", kyso_ms, higher_is_better=False))
        if zxingcpp is not None:
            def with_zxing() -> None:
                code = zxingcpp.create_barcode(new, zxingcpp.BarcodeFormat.QRCode, ec_level="M")
                memoryview(code.to_image(scale=1, add_quiet_zones=False))

            results.add(Figure(SECTION, f"{name}: bare zxing-cpp (kyso builds on it; no PDF path)", _ms(with_zxing, n, repeats), "ms",
                               "kyso, KS2", kyso_ms, higher_is_better=False))
