"""A log client that trusts nobody: replay a copy of the log from its tiles and check everything.

``replay`` reads the checkpoint, checks its signature with the pinned verifier key, reads every
entry bundle, parses every entry, recomputes every hash tile and the root from the entries alone,
and compares them with what the copy serves. With the ``State`` of an earlier run (size, root,
checkpoint), it also refuses a checkpoint older than the one already seen (a stale view), a
different root for the same size (a fork), and a new tree whose prefix is not the old tree (a
rewritten history), checking an RFC 6962 consistency proof between the two.

The copy is read through ``fetch(path) -> bytes | None`` (a directory, an HTTP mirror, a CDN), so
the same code checks kyso's own server and anyone's mirror. Nothing here touches a database.
"""
from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from .entry import Entry
from .errors import LogFormatError, LogVerificationError
from .merkle import HASH_SIZE, MemoryTree, consistency_proof, leaf_hash, verify_consistency
from .note import Checkpoint, NoteVerifier, b64, open_checkpoint, unb64
from .tiles import MAX_ENTRY_BYTES, bundles_for_size, decode_bundle, parse_tile_path, tiles_for_size

Fetch = Callable[[str], bytes | None]
Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class State:
    """What a monitor remembers between runs: the newest checkpoint it verified."""

    origin: str
    size: int
    root_hash: bytes
    checkpoint: str

    def to_json(self) -> str:
        return json.dumps({"origin": self.origin, "size": self.size, "root_hash": b64(self.root_hash),
                           "checkpoint": self.checkpoint}, indent=2) + "\n"

    @classmethod
    def from_json(cls, text: str) -> State:
        try:
            d = json.loads(text)
            return cls(str(d["origin"]), int(d["size"]), unb64(str(d["root_hash"]), "the state's root"),
                       str(d["checkpoint"]))
        except (ValueError, KeyError, TypeError) as exc:
            raise LogFormatError(f"the state file is not a kyso log state: {exc}") from None

    @classmethod
    def load(cls, path: Path) -> State | None:
        return cls.from_json(path.read_text()) if path.exists() else None

    def save(self, path: Path) -> None:
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(self.to_json())
        tmp.replace(path)


@dataclass
class Replay:
    checkpoint: Checkpoint
    note: str
    entries: list[Entry] = field(default_factory=list)
    previous: State | None = None

    @property
    def state(self) -> State:
        cp = self.checkpoint
        return State(cp.origin, cp.size, cp.root_hash, self.note)

    def entries_for_commune(self, commune: str) -> Iterator[tuple[int, Entry]]:
        for index, e in enumerate(self.entries):
            if e.commune == commune:
                yield index, e


def _need(fetch: Fetch, path: str) -> bytes:
    data = fetch(path)
    if data is None:
        raise LogVerificationError(f"the log copy is missing {path}")
    return data


def replay(fetch: Fetch, verifier: NoteVerifier, *, origin: str | None = None, state: State | None = None,
           progress: Progress | None = None) -> Replay:
    """Verify a whole copy of the log; raise ``LogVerificationError`` naming the first thing that is wrong."""
    note_bytes = _need(fetch, "checkpoint")
    cp, note = open_checkpoint(note_bytes, verifier, origin)
    if state is not None:
        if state.origin != cp.origin:
            raise LogVerificationError(f"the state file is for log {state.origin!r}, this copy is {cp.origin!r}")
        if cp.size < state.size:
            raise LogVerificationError(
                f"stale checkpoint: this copy serves size {cp.size}, but size {state.size} was already seen; "
                "the log (or the copy) is hiding newer entries or rolled back")
        if cp.size == state.size and cp.root_hash != state.root_hash:
            raise LogVerificationError(
                f"forked log: two signed checkpoints of size {cp.size} with different roots "
                f"({b64(state.root_hash)} seen before, {b64(cp.root_hash)} now); keep both notes as evidence")
    tree = MemoryTree()
    entries: list[Entry] = []
    done = 0
    for bundle in bundles_for_size(cp.size):
        items = decode_bundle(_need(fetch, bundle.path))
        if len(items) != bundle.width:
            raise LogVerificationError(f"{bundle.path} holds {len(items)} entries, not {bundle.width}")
        for offset, data in enumerate(items):
            index = bundle.index * 256 + offset
            try:
                entries.append(Entry.parse(data))
            except LogFormatError as exc:
                raise LogVerificationError(f"entry {index} is not a well-formed kyso entry: {exc.message}") from None
            tree.append_hash(leaf_hash(data))
        done += len(items)
        if progress is not None:
            progress(done, cp.size)
    for tile in tiles_for_size(cp.size):
        assert tile.level is not None
        served = _need(fetch, tile.path)
        height = 8 * tile.level
        want = b"".join(tree.subtree(height, tile.index * 256 + i) for i in range(tile.width))
        if served != want:
            raise LogVerificationError(f"{tile.path} does not match the hashes of the entries: an entry was changed, "
                                       "removed or reordered, or the tile was altered")
    root = tree.root()
    if root != cp.root_hash:
        raise LogVerificationError("the entries do not hash to the signed root: an entry was changed, removed or "
                                   "reordered in the copy")
    if state is not None and state.size:
        verify_consistency(state.size, cp.size, state.root_hash, cp.root_hash,
                           consistency_proof(state.size, cp.size, tree.subtree))
    return Replay(cp, note, entries, state)


MAX_CHECKPOINT_BYTES = 1 << 20  # a note of origin, size, root, extension lines and 64 signature lines is far less
FETCH_DEADLINE_SECONDS = 120.0  # one file, whole: a server that drips a byte at a time is cut off here


def fetch_limit(path: str) -> int:
    """The most bytes ``path`` can hold in an honest copy: more is refused before it is read into memory."""
    if path == "checkpoint":
        return MAX_CHECKPOINT_BYTES
    tile = parse_tile_path(path)
    return tile.width * (2 + MAX_ENTRY_BYTES if tile.is_entries else HASH_SIZE)


def _too_big(path: str, limit: int) -> LogVerificationError:
    return LogVerificationError(f"the log copy's {path} is larger than {limit} bytes, which no honest copy serves")


def directory_fetch(root: Path) -> Fetch:
    def fetch(path: str) -> bytes | None:
        p = root / path
        if not p.is_file():
            return None
        limit = fetch_limit(path)
        with p.open("rb") as f:
            data = f.read(limit + 1)
        if len(data) > limit:
            raise _too_big(path, limit)
        return data
    return fetch


@contextlib.contextmanager
def http_fetch(prefix: str, *, timeout: float = 30.0,
               deadline: float = FETCH_DEADLINE_SECONDS) -> Iterator[Fetch]:
    """Read a copy over HTTP(S) from ``prefix`` (``https://host/log``), bounded for a hostile server: each file
    at most ``fetch_limit`` bytes (read as sent: ``Accept-Encoding: identity``, no decompression bomb), each
    network wait ``timeout`` seconds, each file ``deadline`` seconds in all. 404 is a missing file."""
    base = prefix.rstrip("/") + "/"
    with httpx.Client(timeout=timeout, follow_redirects=True, headers={"Accept-Encoding": "identity"}) as http:
        def fetch(path: str) -> bytes | None:
            url, limit = base + path, fetch_limit(path)
            start = time.monotonic()
            try:
                with http.stream("GET", url) as response:
                    if response.status_code == 404:
                        return None
                    if response.status_code != 200:
                        raise LogVerificationError(f"{url} answered HTTP {response.status_code}")
                    declared = response.headers.get("content-length", "")
                    if declared.isdigit() and int(declared) > limit:
                        raise _too_big(path, limit)
                    body = bytearray()
                    for chunk in response.iter_raw():  # as each piece arrives (a chunk size would wait to fill it)
                        body += chunk
                        if len(body) > limit:
                            raise _too_big(path, limit)
                        if time.monotonic() - start > deadline:
                            raise LogVerificationError(f"{url} took more than {deadline:g} seconds to send")
                    return bytes(body)
            except httpx.HTTPError as exc:
                raise LogVerificationError(f"cannot read {url}: {type(exc).__name__}: {exc}") from None
        yield fetch
