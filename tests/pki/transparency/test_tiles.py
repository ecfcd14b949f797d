"""C2SP tlog-tiles: paths, bundles, and the tree kept as tiles."""
from __future__ import annotations

import pytest

from pki.transparency import merkle, tiles
from pki.transparency.errors import LogFormatError
from pki.transparency.tiles import Tile, TileHashReader, append_leaves, parse_tile_path, tile_path


@pytest.mark.parametrize(("level", "index", "width", "path"), [
    (0, 0, 256, "tile/0/000"),
    (0, 5, 17, "tile/0/005.p/17"),
    (1, 1234067, 256, "tile/1/x001/x234/067"),
    (2, 1000, 1, "tile/2/x001/000.p/1"),
    (None, 1234067, 256, "tile/entries/x001/x234/067"),
    (None, 0, 255, "tile/entries/000.p/255"),
    (63, 0, 256, "tile/63/000"),
])
def test_paths_round_trip(level: int | None, index: int, width: int, path: str) -> None:
    assert tile_path(level, index, width) == path
    assert parse_tile_path(path) == Tile(level, index, width)


@pytest.mark.parametrize("path", [
    "tile/0/5", "tile/0/0005", "tile/00/000", "tile/64/000", "tile/0/x000/005", "tile/0/001/002",
    "tile/0/000.p/0", "tile/0/000.p/256", "tile/0/000.p/017", "tile/entries/x1/000", "tile/-1/000",
    "tile/0/000/", "/tile/0/000", "tile/0/000.p/", "tile/data/000", "tile/0/x001",
])
def test_other_spellings_are_refused(path: str) -> None:
    with pytest.raises(LogFormatError):
        parse_tile_path(path)


def test_the_spec_example_of_size_70000() -> None:
    have = list(tiles.tiles_for_size(70000))
    assert sum(1 for t in have if t.level == 0 and t.is_full) == 273
    assert [t for t in have if not t.is_full] == [Tile(0, 273, 112), Tile(1, 1, 17), Tile(2, 0, 1)]
    assert sum(1 for t in have if t.level == 1 and t.is_full) == 1
    assert list(tiles.tiles_for_size(256)) == [Tile(0, 0), Tile(1, 0, 1)]
    assert list(tiles.bundles_for_size(300)) == [Tile(None, 0), Tile(None, 1, 44)]
    assert list(tiles.tiles_for_size(0)) == []


def test_bundles_round_trip_and_refuse_truncation() -> None:
    entries = [b"", b"a", b"x" * 300]
    data = tiles.encode_bundle(entries)
    assert data[:2] == b"\x00\x00" and tiles.decode_bundle(data) == entries
    for cut in (1, 4, len(data) - 1):
        with pytest.raises(LogFormatError):
            tiles.decode_bundle(data[:cut])
    with pytest.raises(ValueError):
        tiles.encode_bundle([b"x" * 65536])


@pytest.mark.parametrize("batches", [[1], [255, 1], [256], [3, 300, 7, 66000 - 310], [65536 + 5]])
def test_appending_in_batches_gives_the_tree_of_the_definition(batches: list[int]) -> None:
    store: dict[tuple[int, int], bytes] = {}
    mem = merkle.MemoryTree()
    size = 0
    for count in batches:
        new = [merkle.leaf_hash(f"e{size + i}".encode()) for i in range(count)]
        store.update(append_leaves(size, new, lambda lv, ix: store.get((lv, ix), b"")))
        for h in new:
            mem.append_hash(h)
        size += count
        reader = TileHashReader(lambda lv, ix: store.get((lv, ix), b""))
        assert merkle.tree_hash(size, reader) == mem.root()
        # every tile the spec says exists is stored, with the right width
        for t in tiles.tiles_for_size(size):
            assert t.level is not None and len(store[(t.level, t.index)]) >= t.width * 32
    reader = TileHashReader(lambda lv, ix: store.get((lv, ix), b""))
    for index in (0, size // 2, size - 1):
        assert merkle.inclusion_proof(index, size, reader) == merkle.inclusion_proof(index, size, mem.subtree)
    assert merkle.consistency_proof(size // 3 or 1, size, reader) == merkle.consistency_proof(size // 3 or 1, size, mem.subtree)


def test_a_stored_tile_of_the_wrong_length_is_refused() -> None:
    store = append_leaves(0, [b"\x01" * 32] * 3, lambda lv, ix: b"")
    with pytest.raises(LogFormatError):
        append_leaves(4, [b"\x02" * 32], lambda lv, ix: store.get((lv, ix), b""))
