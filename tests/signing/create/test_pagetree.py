"""A page is found without parsing the pages before it only when every reader maps its index to the same
object: a flat page tree, as qpdf saw it at intake. Counted, not timed: the objects pyHanko parses. Trees a
reader could read otherwise (nested nodes, a /Count that lies, a tree the writer changed since) are walked
by pyHanko as before, with the same answer it gives."""
from __future__ import annotations

import io
from typing import Any

import pikepdf
import pytest
from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter

from api.container import Container
from signing.create import intake, pades
from signing.create.pagetree import SigningWriter
from tests.helpers.pdfs import assemble
from tests.signing.create import test_stamp_on_paper as paper
from tests.signing.create.test_stamp_on_paper import _widget, sign

person = paper.person  # the same fixture

Node = list[Any]  # a /Pages node: its kids, each "P" (a page) or another node; a leading int overrides /Count


def _pdf(tree: Node, *, resources_on_root: bool = False) -> bytes:
    """A PDF whose page tree has the shape of ``tree``; each page draws its own number with a font of its own
    resources, or (``resources_on_root``) one every page inherits from the tree's root."""
    objects: list[bytes] = [b""]  # 1: the catalogue, written last
    pages = [0]
    font = b" /Resources << /Font << /F1 << /Type /Font /Subtype /Type1 /BaseFont /Helvetica >> >> >>"

    def node(spec: Node, parent: int) -> int:
        number = len(objects) + 1
        objects.append(b"")
        declared = spec[0] if spec and isinstance(spec[0], int) else None
        kids, count = [], 0
        for kid in spec[1:] if declared is not None else spec:
            if kid == "P":
                pages[0] += 1
                content = len(objects) + 1
                text = b"BT /F1 24 Tf 60 700 Td (Page %d) Tj ET" % pages[0]
                objects.append(b"<< /Length %d >>\nstream\n%s\nendstream" % (len(text), text))
                kids.append(len(objects) + 1)
                objects.append(b"<< /Type /Page /Parent %d 0 R /MediaBox [0 0 595 842] /Contents %d 0 R%s >>"
                               % (number, content, b"" if resources_on_root else font))
                count += 1
            else:
                child = node(kid, number)
                kids.append(child)
                count += _leaves(kid)
        extra = font if parent == 0 and resources_on_root else b""
        parent_entry = b"" if parent == 0 else b" /Parent %d 0 R" % parent
        objects[number - 1] = b"<< /Type /Pages%s /Count %d /Kids [%s]%s >>" % (
            parent_entry, declared if declared is not None else count, b" ".join(b"%d 0 R" % k for k in kids), extra)
        return number

    root = node(tree, 0)
    objects[0] = b"<< /Type /Catalog /Pages %d 0 R >>" % root
    return assemble(objects)


def _leaves(spec: Node) -> int:
    kids = spec[1:] if spec and isinstance(spec[0], int) else spec
    return sum(1 if kid == "P" else _leaves(kid) for kid in kids)


def _parsed(writer: IncrementalPdfFileWriter, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The object numbers pyHanko parses from the file from now on."""
    seen: list[int] = []
    reader = writer.prev
    read = reader._read_object

    def counted(ref: generic.Reference, *args: Any, **kwargs: Any) -> Any:
        seen.append(ref.idnum)
        return read(ref, *args, **kwargs)

    monkeypatch.setattr(reader, "_read_object", counted)
    return seen


def _both(pdf: bytes) -> tuple[IncrementalPdfFileWriter, IncrementalPdfFileWriter]:
    """pyHanko's own writer, and kyso's told what intake saw."""
    source = intake.prepare(pdf, keep_reader=True)
    assert source.pdf == pdf, "a sound input is signed as it is"
    return (IncrementalPdfFileWriter(io.BytesIO(pdf), strict=False),
            pades.open_writer(pdf, source.take_reader(), flat_pages=source.flat_pages))


def _same(theirs: Any, ours: Any) -> None:
    """The same answer: references by number, resources by value."""
    assert len(theirs) == len(ours)
    for a, b in zip(theirs, ours, strict=True):
        if isinstance(a, generic.IndirectObject):
            assert isinstance(b, generic.IndirectObject) and a.reference == b.reference
        else:
            assert a == b


# -- a flat tree: the page itself, nothing before it ------------------------------------------------------
def test_intake_recognises_a_flat_tree_and_nothing_else() -> None:
    assert intake.prepare(_pdf(["P"] * 30)).flat_pages == 30
    assert intake.prepare(_pdf([["P"] * 10, ["P"] * 10, ["P"] * 10])).flat_pages is None
    assert intake.prepare(_pdf(["P"] * 5 + [["P"]])).flat_pages is None, "one page one level down is not flat"


@pytest.mark.parametrize("index", [0, 1, 250, 498, 499, -1, -500])
def test_a_flat_tree_gives_pyhankos_answer_for_every_index(index: int) -> None:
    pdf = _pdf(["P"] * 500, resources_on_root=True)
    theirs, ours = _both(pdf)
    assert isinstance(ours, SigningWriter) and ours.flat_pages == 500
    _same(theirs.find_page_for_modification(index), ours.find_page_for_modification(index))
    _same(theirs.find_page_container(index), ours.find_page_container(index))


def test_the_last_of_500_pages_is_found_by_parsing_only_that_page(monkeypatch: pytest.MonkeyPatch) -> None:
    pdf = _pdf(["P"] * 500)
    theirs, ours = _both(pdf)
    walked, read = _parsed(theirs, monkeypatch), _parsed(ours, monkeypatch)
    theirs.find_page_for_modification(499)
    ours.find_page_for_modification(499)
    assert len(walked) >= 500, "pyHanko's walk parses every page before it"
    last = ours.find_page_for_modification(499)[0].idnum
    assert set(read) <= {1, 2, last} and last in read, f"kyso parsed {len(read)} objects"


@pytest.mark.parametrize("index", [500, -501])
def test_an_index_beyond_the_tree_is_pyhankos_error(index: int) -> None:
    theirs, ours = _both(_pdf(["P"] * 500))
    with pytest.raises(Exception) as expected:
        theirs.find_page_for_modification(index)
    with pytest.raises(type(expected.value)):
        ours.find_page_for_modification(index)


# -- anything else: pyHanko walks it, with the answer it always gave -----------------------------------------
@pytest.mark.parametrize("tree", [
    pytest.param([["P"] * 7, ["P"] * 7, [["P"] * 3, ["P"] * 4]], id="nested"),
    pytest.param(["P", [1, "P", "P"], "P"], id="a node whose /Count lies"),
    pytest.param(["P", [], ["P", "P"], "P"], id="an empty node beside one with two pages"),
    pytest.param([[1], "P", "P"], id="an empty node that says it holds a page"),
])
def test_other_trees_get_pyhankos_walk(tree: Node) -> None:
    pdf = _pdf(tree)
    source = intake.prepare(pdf, keep_reader=True)
    assert source.flat_pages is None
    theirs = IncrementalPdfFileWriter(io.BytesIO(source.pdf), strict=False)
    ours = pades.open_writer(source.pdf, source.take_reader(), flat_pages=source.flat_pages)
    for index in (0, -1):
        try:
            expected = theirs.find_page_for_modification(index)
        except Exception as error:  # noqa: BLE001 - whatever pyHanko says, kyso says too
            with pytest.raises(type(error)):
                ours.find_page_for_modification(index)
        else:
            _same(expected, ours.find_page_for_modification(index))


@pytest.mark.parametrize("tree", [
    pytest.param(["P", [1, "P", "P"], "P"], id="a node says one page and holds two"),
    pytest.param([[1, "P", "P"], [3, "P", "P", "P"]], id="two nodes whose lies cancel out"),
    pytest.param([[2, "P", [5, "P"]], "P"], id="a lie one level down"),
])
def test_a_count_that_lies_is_damage_qpdf_repairs(tree: Node) -> None:
    """qpdf walks the kids and does not mind an intermediate /Count; pyHanko and PDFium skip branches by it,
    so page i would be another page for them. Intake treats it as damage: an unsigned file is rebuilt, and
    in the rebuilt file every reader finds the same pages in the same order."""
    pdf = _pdf(tree)
    count, trouble, flat = intake.qpdf_pages(pdf)
    assert count == _leaves(tree) and trouble and "/Count" in trouble and not flat
    source = intake.prepare(pdf)
    assert source.repaired and source.pdf != pdf
    assert intake.qpdf_pages(source.pdf)[1] is None
    theirs = IncrementalPdfFileWriter(io.BytesIO(source.pdf), strict=False)
    with pikepdf.open(io.BytesIO(source.pdf)) as rebuilt, pikepdf.open(io.BytesIO(pdf)) as original:
        texts = [page.Contents.read_bytes() for page in original.pages]
        assert [page.Contents.read_bytes() for page in rebuilt.pages] == texts, "the same pages, in order"
        for index, text in enumerate(texts):
            page = theirs.find_page_for_modification(index)[0].get_object()
            assert page["/Contents"].data == text, f"pyHanko's page {index} is qpdf's"


def test_a_signed_file_whose_count_lies_is_refused() -> None:
    from signing.errors import SignedPdfDamaged

    mark = b"%% /ByteRange [0 1 2 3] /Type /Sig\n"  # looks signed: never rebuilt
    with pytest.raises(SignedPdfDamaged):
        intake.prepare(_pdf(["P", [1, "P", "P"], "P"]) + mark)
    honest = _pdf(["P", [2, "P", "P"], "P"]) + mark  # the same shape, counted right: the mark alone refuses nothing
    assert intake.prepare(honest).pdf == honest


def test_an_honest_nested_tree_is_no_damage() -> None:
    pdf = _pdf([["P"] * 7, [["P"] * 3, ["P"] * 4], "P"])
    assert intake.qpdf_pages(pdf)[1:] == (None, False)
    assert not intake.prepare(pdf).repaired


def test_a_lying_hint_is_not_believed() -> None:
    """A writer told of a flat tree that is not (a caller's mistake) still finds what pyHanko finds."""
    pdf = _pdf([["P"] * 3, ["P"] * 3])
    theirs = IncrementalPdfFileWriter(io.BytesIO(pdf), strict=False)
    ours = pades.open_writer(pdf, flat_pages=6)  # two kids, not six: the tree is not the one described
    _same(theirs.find_page_for_modification(-1), ours.find_page_for_modification(-1))
    ours = pades.open_writer(pdf, flat_pages=2)  # /Count 6, not two
    _same(theirs.find_page_for_modification(-1), ours.find_page_for_modification(-1))


def _blank() -> generic.DictionaryObject:
    return generic.DictionaryObject({generic.pdf_name("/Type"): generic.pdf_name("/Page"),
                                     generic.pdf_name("/MediaBox"): generic.ArrayObject(
                                         generic.NumberObject(v) for v in (0, 0, 595, 842))})


@pytest.mark.parametrize("after", [None, 19, 7, 0])
def test_a_page_the_writer_adds_keeps_the_tree_flat(after: int | None, monkeypatch: pytest.MonkeyPatch) -> None:
    pdf = _pdf(["P"] * 20)
    theirs, ours = _both(pdf)
    added = [writer.insert_page(_blank(), after) for writer in (theirs, ours)]
    assert isinstance(ours, SigningWriter) and ours.flat_pages == 21
    read = _parsed(ours, monkeypatch)
    for index in (0, 7, 8, 19, 20, -1):
        _same(theirs.find_page_for_modification(index), ours.find_page_for_modification(index))
        _same(theirs.find_page_container(index), ours.find_page_container(index))
    where = 20 if after is None else after + 1
    assert ours.find_page_for_modification(where)[0].reference == added[1].reference
    assert len(set(read)) <= 6, "only the pages asked for are parsed"


def test_a_page_added_to_a_nested_tree_is_found_by_pyhankos_walk() -> None:
    pdf = _pdf([["P"] * 5, ["P"] * 5])
    theirs, ours = _both(pdf)
    for writer in (theirs, ours):
        writer.insert_page(_blank())
    assert isinstance(ours, SigningWriter) and ours.flat_pages is None
    _same(theirs.find_page_for_modification(-1), ours.find_page_for_modification(-1))


# -- signed: the stamp is where it always went ----------------------------------------------------------
@pytest.mark.parametrize("tree", [
    pytest.param(["P"] * 120, id="flat"),
    pytest.param([["P"] * 40, ["P"] * 40, ["P"] * 40], id="nested"),
])
def test_the_stamp_goes_on_the_last_page(pki: Container, person: str, tree: Node) -> None:
    result = sign(pki, _pdf(tree, resources_on_root=True), person)
    page, _ = _widget(result.pdf, "Signature1")
    assert page == 119 and not result.stamp_on_new_page
    with pikepdf.open(io.BytesIO(result.pdf)) as doc:
        assert len(doc.pages) == 120 and not doc.get_warnings()
