"""C2SP tlog-tiles: tile paths, entry bundles, and the tree as tiles.

Paths, relative to the log's prefix::

    tile/<L>/<N>[.p/<W>]          hash tile: level L (0..63), index N, partial width W (1..255)
    tile/entries/<N>[.p/<W>]      entry bundle: big-endian uint16 length || entry, repeated

``N`` is written in 3-digit groups, all but the last prefixed with ``x`` (1234067 →
``x001/x234/067``). A tile at level ``L`` holds up to 256 hashes of complete subtrees of height
``8·L``; a full tile is 8,192 bytes; a partial one is a prefix of the full tile it becomes. The
tree of size ``s`` has ``(s >> 8L) & 255`` hashes in its partial tile at level ``L``.

``append_leaves`` is the sequencer's step (new leaf hashes in, changed tiles out); ``TileHashReader``
turns tiles back into the ``SubtreeHash`` that ``merkle`` builds proofs from.
"""
from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

from .errors import LogFormatError
from .merkle import HASH_SIZE, node_hash

TILE_HEIGHT = 8
TILE_WIDTH = 1 << TILE_HEIGHT
FULL_TILE_BYTES = TILE_WIDTH * HASH_SIZE
MAX_LEVEL = 63
MAX_ENTRY_BYTES = 0xFFFF


@dataclass(frozen=True, order=True)
class Tile:
    """A tile's address. ``level`` is ``None`` for an entry bundle; ``width`` is 1..256 (256 = full)."""

    level: int | None
    index: int
    width: int = TILE_WIDTH

    @property
    def is_entries(self) -> bool:
        return self.level is None

    @property
    def is_full(self) -> bool:
        return self.width == TILE_WIDTH

    @property
    def path(self) -> str:
        return tile_path(self.level, self.index, self.width)


def encode_index(n: int) -> str:
    """``1234067`` → ``x001/x234/067``; ``5`` → ``005``."""
    if n < 0:
        raise ValueError(f"a tile index cannot be negative: {n}")
    groups = []
    while True:
        groups.append(f"{n % 1000:03d}")
        n //= 1000
        if n == 0:
            break
    groups.reverse()
    return "/".join([f"x{g}" for g in groups[:-1]] + [groups[-1]])


def tile_path(level: int | None, index: int, width: int = TILE_WIDTH) -> str:
    """The path of a tile (``level`` an int) or an entry bundle (``level`` ``None``)."""
    if level is not None and not 0 <= level <= MAX_LEVEL:
        raise ValueError(f"tile level {level} is outside 0..{MAX_LEVEL}")
    if not 1 <= width <= TILE_WIDTH:
        raise ValueError(f"tile width {width} is outside 1..{TILE_WIDTH}")
    head = "tile/entries/" if level is None else f"tile/{level}/"
    tail = "" if width == TILE_WIDTH else f".p/{width}"
    return head + encode_index(index) + tail


_PATH = re.compile(r"tile/(entries|0|[1-9][0-9]?)/((?:x[0-9]{3}/)*[0-9]{3})(?:\.p/([1-9][0-9]{0,2}))?")


def parse_tile_path(path: str) -> Tile:
    """The inverse of ``tile_path``, strict: one spelling per tile, or ``LogFormatError``."""
    m = _PATH.fullmatch(path)
    if m is None:
        raise LogFormatError(f"not a tile path: {path!r} (expected tile/<L>/<N>[.p/<W>] or tile/entries/<N>[.p/<W>])")
    level = None if m.group(1) == "entries" else int(m.group(1))
    groups = m.group(2).replace("x", "").split("/")
    if len(groups) > 1 and groups[0] == "000":
        raise LogFormatError(f"tile index has a leading zero group: {path!r}")
    index = int("".join(groups))
    width = int(m.group(3)) if m.group(3) else TILE_WIDTH
    if (level is not None and level > MAX_LEVEL) or (m.group(3) and width >= TILE_WIDTH):
        raise LogFormatError(f"tile level or width out of range: {path!r}")
    return Tile(level, index, width)


def tiles_for_size(size: int) -> Iterator[Tile]:
    """Every hash tile a tree of ``size`` leaves has, full and partial, level by level."""
    level = 0
    while True:
        count = size >> (TILE_HEIGHT * level)  # hashes at this level
        if count == 0:
            return
        for index in range(count // TILE_WIDTH):
            yield Tile(level, index)
        if count % TILE_WIDTH:
            yield Tile(level, count // TILE_WIDTH, count % TILE_WIDTH)
        level += 1


def bundles_for_size(size: int) -> Iterator[Tile]:
    """Every entry bundle a tree of ``size`` leaves has."""
    for index in range(size // TILE_WIDTH):
        yield Tile(None, index)
    if size % TILE_WIDTH:
        yield Tile(None, size // TILE_WIDTH, size % TILE_WIDTH)


def encode_bundle(entries: Sequence[bytes]) -> bytes:
    out = bytearray()
    for e in entries:
        if len(e) > MAX_ENTRY_BYTES:
            raise ValueError(f"a log entry is limited to {MAX_ENTRY_BYTES} bytes, this one has {len(e)}")
        out += len(e).to_bytes(2, "big") + e
    return bytes(out)


def decode_bundle(data: bytes) -> list[bytes]:
    entries, pos = [], 0
    while pos < len(data):
        if pos + 2 > len(data):
            raise LogFormatError("entry bundle ends inside a length prefix")
        n = int.from_bytes(data[pos:pos + 2], "big")
        if pos + 2 + n > len(data):
            raise LogFormatError("entry bundle ends inside an entry")
        entries.append(data[pos + 2:pos + 2 + n])
        pos += 2 + n
    return entries


def tile_root(data: bytes) -> bytes:
    """The hash of the complete subtree a full tile's 256 hashes span."""
    if len(data) != FULL_TILE_BYTES:
        raise ValueError("only a full tile has a root")
    row = [data[i:i + HASH_SIZE] for i in range(0, len(data), HASH_SIZE)]
    while len(row) > 1:
        row = [node_hash(row[i], row[i + 1]) for i in range(0, len(row), 2)]
    return row[0]


TileReader = Callable[[int, int], bytes]
"""``(level, index) -> data`` of the tile as stored now (partial or full); ``b""`` if it does not exist."""


def append_leaves(old_size: int, leaf_hashes: Sequence[bytes], read: TileReader) -> dict[tuple[int, int], bytes]:
    """Append leaves to a tree of ``old_size`` stored as tiles; return every changed tile's new data.

    Only the rightmost tile of each level changes (plus new ones to its right); a tile that fills
    up sends its root to the level above.
    """
    changed: dict[tuple[int, int], bytes] = {}
    new_hashes = list(leaf_hashes)
    level, first = 0, old_size  # ``first``: how many hashes this level had before
    while new_hashes:
        index = first // TILE_WIDTH
        data = bytearray(read(level, index) if first % TILE_WIDTH else b"")
        if len(data) != (first % TILE_WIDTH) * HASH_SIZE:
            raise LogFormatError(f"stored tile {tile_path(level, index)} has {len(data)} bytes, "
                                 f"expected {(first % TILE_WIDTH) * HASH_SIZE}")
        above: list[bytes] = []
        for h in new_hashes:
            data += h
            if len(data) == FULL_TILE_BYTES:
                changed[(level, index)] = bytes(data)
                above.append(tile_root(bytes(data)))
                index, data = index + 1, bytearray()
        if data:
            changed[(level, index)] = bytes(data)
        new_hashes, first, level = above, first // TILE_WIDTH, level + 1
    return changed


class TileHashReader:
    """Complete-subtree hashes read from tiles, for ``merkle``'s proofs and root.

    Subtree ``(height, i)`` is rebuilt from the ``2**(height % 8)`` hashes it spans in the tile at
    level ``height // 8``; tiles are cached per reader (one reader per request or verification).
    """

    def __init__(self, read: TileReader) -> None:
        self._read = read
        self._cache: dict[tuple[int, int], bytes] = {}

    def _tile(self, level: int, index: int) -> bytes:
        key = (level, index)
        if key not in self._cache:
            self._cache[key] = self._read(level, index)
        return self._cache[key]

    def __call__(self, height: int, index: int) -> bytes:
        level, rest = divmod(height, TILE_HEIGHT)
        count = 1 << rest
        first = index * count  # position of the subtree's first hash at tile level ``level``
        tile = self._tile(level, first // TILE_WIDTH)
        start = (first % TILE_WIDTH) * HASH_SIZE
        chunk = tile[start:start + count * HASH_SIZE]
        if len(chunk) != count * HASH_SIZE:
            raise LogFormatError(
                f"tile {tile_path(level, first // TILE_WIDTH)} is too short for subtree ({height}, {index})")
        row = [chunk[i:i + HASH_SIZE] for i in range(0, len(chunk), HASH_SIZE)]
        while len(row) > 1:
            row = [node_hash(row[i], row[i + 1]) for i in range(0, len(row), 2)]
        return row[0]
