"""Malformed /ByteRange and /Contents in a kyso-signed PDF, sent to the open verifier: a clear 4xx or a
report that says *not genuine*, never a 500 (issue 15, item 6: such values answered 500).

Each case edits the signature dictionary of a real kyso-signed file in place, keeping every byte offset
(the value is padded with spaces), so the file still parses and only the value under test is wrong; one
case rewrites the dictionary in a later incremental update instead.
"""
from __future__ import annotations

import re
from io import BytesIO

import pytest
from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter

from tests.helpers.hostile import Kyso, assert_refused_clearly
from tests.helpers.signing import CORPUS

BYTE_RANGE = re.compile(rb"/ByteRange\s*\[([^\]]*)\][ ]*")  # with the padding pyHanko leaves after it
CONTENTS = re.compile(rb"/Contents\s*<([0-9A-Fa-f\s]*)>")


@pytest.fixture(scope="module")
def signed_document(kyso: Kyso) -> tuple[str, bytes]:
    r = kyso.sign((CORPUS / "fourpages.pdf").read_bytes())
    assert r.status_code == 200, r.text
    return r.headers["x-document-id"], r.content


@pytest.fixture(scope="module")
def signed(signed_document: tuple[str, bytes]) -> bytes:
    return signed_document[1]


def _byte_range(pdf: bytes) -> tuple[re.Match[bytes], list[int]]:
    [match] = list(BYTE_RANGE.finditer(pdf))
    return match, [int(x) for x in match.group(1).split()]


def _same_length(pdf: bytes, match: re.Match[bytes], replacement: bytes) -> bytes:
    """Put ``replacement`` where ``match`` was, padded with spaces: every offset in the file stays right."""
    size = match.end() - match.start()
    assert len(replacement) <= size, (replacement, size)
    return pdf[:match.start()] + replacement.ljust(size) + pdf[match.end():]


def with_byte_range(value: bytes | None = None, numbers: object = None):  # type: ignore[no-untyped-def]
    def craft(pdf: bytes) -> bytes:
        match, br = _byte_range(pdf)
        body = value if value is not None else (b"[" + b" ".join(str(n).encode() for n in numbers(br, len(pdf)))
                                                + b"]")  # type: ignore[operator]
        return _same_length(pdf, match, b"/ByteRange " + body)
    return craft


def with_contents(make) -> object:  # type: ignore[no-untyped-def]
    def craft(pdf: bytes) -> bytes:
        match = CONTENTS.search(pdf)
        assert match is not None
        return _same_length(pdf, match, b"/Contents " + make(match.group(1)))
    return craft


def rewritten_in_update(pdf: bytes) -> bytes:
    """A later revision replaces the signature dictionary's /ByteRange with a dictionary."""
    writer = IncrementalPdfFileWriter(BytesIO(pdf), strict=False)
    [field] = [f.get_object() for f in writer.root["/AcroForm"]["/Fields"] if f.get_object().get("/FT") == "/Sig"]
    obj = field["/V"]
    obj["/ByteRange"] = generic.DictionaryObject({generic.NameObject("/A"): generic.NumberObject(1)})
    writer.update_container(obj)
    out = BytesIO()
    writer.write(out)
    return out.getvalue()


CASES = {
    "byterange-null": with_byte_range(b"null"),
    "byterange-strings": with_byte_range(b"[(0) (1) (2) (3)]"),
    "byterange-dictionary": with_byte_range(b"<</A 1>>"),
    "byterange-name": with_byte_range(b"/Everything"),
    "byterange-empty": with_byte_range(b"[]"),
    "byterange-two-numbers": with_byte_range(numbers=lambda br, n: br[:2]),
    "byterange-three-numbers": with_byte_range(numbers=lambda br, n: br[:3]),
    "byterange-six-numbers": with_byte_range(numbers=lambda br, n: [*br, br[2], 0]),
    "byterange-reals": with_byte_range(numbers=lambda br, n: [f"{x}.5" for x in br]),
    "byterange-negative-length": with_byte_range(numbers=lambda br, n: [br[0], -br[1], br[2], br[3]]),
    "byterange-negative-offset": with_byte_range(numbers=lambda br, n: [-10, br[1], br[2], br[3]]),
    "byterange-overlapping": with_byte_range(numbers=lambda br, n: [0, br[2] + 10, br[2], br[3]]),
    "byterange-reversed": with_byte_range(numbers=lambda br, n: [br[2], br[3], 0, br[1]]),
    "byterange-beyond-eof": with_byte_range(numbers=lambda br, n: [0, br[1], br[2], br[3] + 10_000]),
    "byterange-far-beyond-eof": with_byte_range(numbers=lambda br, n: [0, br[1], 2**62, 2**62]),
    "byterange-huge-integer": with_byte_range(numbers=lambda br, n: [0, 10**30, br[2], br[3]]),
    "byterange-covers-contents": with_byte_range(numbers=lambda br, n: [0, n, 0, 0]),
    "byterange-start-not-zero": with_byte_range(numbers=lambda br, n: [1, br[1] - 1, br[2], br[3]]),
    "byterange-in-update-dictionary": rewritten_in_update,
    "contents-integer": with_contents(lambda hexed: b"12345"),
    "contents-null": with_contents(lambda hexed: b"null"),
    "contents-name": with_contents(lambda hexed: b"/Signature"),
    "contents-array": with_contents(lambda hexed: b"[<3082> <00>]"),
    "contents-dictionary": with_contents(lambda hexed: b"<</A 1>>"),
    "contents-empty-string": with_contents(lambda hexed: b"<>"),
    "contents-odd-hex": with_contents(lambda hexed: b"<" + hexed.rstrip(b"0")[:-1] + b">"),
    "contents-not-hex": with_contents(lambda hexed: b"<" + b"zz" + hexed[2:] + b">"),
    "contents-garbage-der": with_contents(lambda hexed: b"<" + b"30" + b"ff" * 16 + b">"),
    "contents-literal-string": with_contents(lambda hexed: b"(" + b"0" * 64 + b")"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_malformed_signature_values_are_never_a_500(kyso: Kyso, signed: bytes, case: str) -> None:
    forged = CASES[case](signed)  # type: ignore[operator]
    assert forged != signed
    r = kyso.client.post("/api/v1/verify", files={"file": ("forged.pdf", forged, "application/pdf")})
    assert r.status_code < 500, (case, r.status_code, r.text[:300])
    if r.status_code >= 400:
        assert_refused_clearly(r)
        return
    report = r.json()
    assert report["genuine"] is False and report["indication"] != "TOTAL-PASSED", (case, report["indication"])


@pytest.mark.parametrize("case", sorted(CASES))
def test_the_citizen_upload_of_a_malformed_signature_is_never_a_500(kyso: Kyso, signed_document: tuple[str, bytes],
                                                                    case: str) -> None:
    document_id, pdf = signed_document
    r = kyso.client.post(f"/v/{document_id}", files={"file": ("forged.pdf", CASES[case](pdf), "application/pdf")})  # type: ignore[operator]
    assert r.status_code < 500, (case, r.status_code, r.text[:300])
    assert 'class="box ok"' not in r.text and 'data-result="genuine"' not in r.text, case  # never green


def test_the_untouched_file_is_genuine(kyso: Kyso, signed: bytes) -> None:
    """The cases above fail because of what they change, not because the base file was never genuine."""
    r = kyso.client.post("/api/v1/verify", files={"file": ("signed.pdf", signed, "application/pdf")})
    assert r.status_code == 200 and r.json()["genuine"] is True, r.text[:300]
