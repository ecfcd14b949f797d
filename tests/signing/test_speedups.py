"""kyso's faster hex-string reader, name comparison and name writer give exactly what pyHanko and asn1crypto
give."""
from __future__ import annotations

import random
from io import BytesIO

import pytest
from asn1crypto import x509 as asn1_x509
from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.misc import PdfStreamError

from signing import speedups


def read_both(data: bytes) -> tuple[object, int, object, int]:
    fast_stream, slow_stream = BytesIO(data), BytesIO(data)
    fast = speedups.read_hex_string(fast_stream)
    slow = speedups._original(slow_stream)
    return fast, fast_stream.tell(), slow, slow_stream.tell()


@pytest.mark.parametrize("data", [
    b"<48656c6c6f> rest", b"<>", b"<4>", b"<ABCDEF0123>", b"<ab cd\n\tef\r\x00\x0c12>tail", b"<4865 6c6c 6f2>",
    b"<" + b"30" * 100_000 + b">",  # longer than one chunk
    b"<" + b"a" * (speedups.CHUNK - 1) + b">x",  # '>' right at a chunk edge
])
def test_same_value_and_position(data: bytes) -> None:
    fast, fast_pos, slow, slow_pos = read_both(data)
    assert fast == slow and type(fast) is type(slow) and fast_pos == slow_pos


def test_random_strings_agree() -> None:
    rng = random.Random(7)
    for _ in range(300):
        body = bytes(rng.choice(b"0123456789abcdefABCDEF \n\r\t") for _ in range(rng.randint(0, 200)))
        fast, fast_pos, slow, slow_pos = read_both(b"<" + body + b"> trailing")
        assert (fast, fast_pos) == (slow, slow_pos)


@pytest.mark.parametrize("data", [b"<48zz>", b"<4865", b"<48 % comment\n 65>"])
def test_unusual_input_is_left_to_pyhanko(data: bytes) -> None:
    """A stray character, a missing '>' or a comment: pyHanko's own reader answers (value or error)."""
    outcomes = []
    for reader in (speedups.read_hex_string, speedups._original):
        try:
            stream = BytesIO(data)
            outcomes.append((reader(stream), stream.tell()))
        except PdfStreamError as exc:
            outcomes.append(type(exc))
    assert outcomes[0] == outcomes[1]


def name(**attrs: str) -> asn1_x509.Name:
    return asn1_x509.Name.build(attrs)


def test_name_equality_matches_asn1crypto() -> None:
    a = name(common_name="Nguyễn Văn A", country_name="VN")
    same = name(common_name="Nguyễn Văn A", country_name="VN")
    spaced = name(common_name="Nguyễn  Văn A", country_name="VN")  # RFC 4518: inner spaces collapse
    other = name(common_name="Trần Thị B", country_name="VN")
    for x, y in [(a, same), (a, spaced), (a, other), (spaced, other)]:
        assert speedups.name_eq(x, y) == speedups._name_eq(x, y)
        assert speedups.name_eq(x, y) == speedups.name_eq(x, y)  # cached answer is the same
    assert speedups.name_eq(a, "not a name") is False


def _written(writer: object, name: str) -> bytes | str:
    out = BytesIO()
    try:
        writer(generic.NameObject(name), out)  # type: ignore[operator]
    except Exception as error:  # noqa: BLE001 - the same failure is part of the same answer
        return f"{type(error).__name__}: {error}"
    return out.getvalue()


@pytest.mark.parametrize("name", ["/Type", "/F1", "/A#B", "/a b", "/Ünicode", "/(x)", "/a/b", "/%", "/", "/\x7f",
                                  "/~!\"$&'*+,-.:;=?@\\^_`|", "/{x}", "/[", "/<>", "/#23", "/a\x00", "Type", ""])
def test_names_are_written_as_pyhanko_writes_them(name: str) -> None:
    assert _written(speedups.write_name, name) == _written(speedups._write_name, name)


def test_random_names_are_written_as_pyhanko_writes_them() -> None:
    rng = random.Random(11)
    for _ in range(5000):
        name = "/" + "".join(chr(rng.randrange(0, 0x180)) for _ in range(rng.randrange(0, 7)))
        assert _written(speedups.write_name, name) == _written(speedups._write_name, name), repr(name)


def test_disabled_restores_the_libraries() -> None:
    speedups.install()
    with speedups.disabled():
        assert generic.read_hex_string_from_stream is speedups._original
        assert asn1_x509.Name.__eq__ is speedups._name_eq
        assert generic.NameObject.write_to_stream is speedups._write_name
    assert generic.read_hex_string_from_stream is speedups.read_hex_string
    assert asn1_x509.Name.__eq__ is speedups.name_eq
    assert generic.NameObject.write_to_stream is speedups.write_name


def test_importing_the_verifier_patches_nothing() -> None:
    """The speed-ups are installed by the container at start-up (or a Verifier built by hand), never on import."""
    import subprocess
    import sys
    from pathlib import Path

    code = ("import signing.verify.verifier, api.container; from signing import speedups; "
            "print(speedups.installed())")
    root = Path(__file__).resolve().parents[2]
    out = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
    speedups.install()
    speedups.install()  # idempotent
    assert speedups.installed()


def test_the_container_installs_them(pki) -> None:  # type: ignore[no-untyped-def]
    from api.container import build

    with speedups.disabled():
        assert not speedups.installed()
        other = build(pki.settings).warm()  # another worker starting up (create_app warms its container)
        try:
            assert speedups.installed()
        finally:
            other.engine.dispose()
    assert speedups.installed()
