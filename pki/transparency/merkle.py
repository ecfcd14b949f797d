"""RFC 6962 Merkle tree hashing, and inclusion and consistency proofs (RFC 6962 §2.1, RFC 9162 §2.1).

A leaf hash is ``SHA-256(0x00 || entry)``, an interior node ``SHA-256(0x01 || left || right)``, the
empty tree ``SHA-256("")``. The tree over ``n`` leaves splits at the largest power of two below
``n``. Proofs are generated from a ``SubtreeHash`` — any function that returns the hash of the
complete subtree of ``2**height`` leaves starting at leaf ``index * 2**height`` — so the same code
works over a list in memory (``MemoryTree``) and over stored tiles (``tiles.TileHashReader``).
Verification needs nothing but the hashes, and follows RFC 9162's algorithms step by step.
"""
from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence

from .errors import LogVerificationError

HASH_SIZE = 32

SubtreeHash = Callable[[int, int], bytes]
"""``(height, index) -> hash`` of the complete subtree over leaves ``[index << height, (index + 1) << height)``."""


def leaf_hash(entry: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + entry).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


EMPTY_ROOT = hashlib.sha256(b"").digest()


def _split(n: int) -> int:
    """The largest power of two strictly below ``n`` (``n >= 2``)."""
    return 1 << ((n - 1).bit_length() - 1)


def range_hash(start: int, end: int, subtree: SubtreeHash) -> bytes:
    """MTH(D[start:end]) for the ranges RFC 6962's recursion produces (``start`` aligned).

    The range is cut, left to right, into the largest aligned complete subtrees, and their hashes
    are folded from the right, which is what the recursive definition computes.
    """
    if end <= start:
        if start == end == 0:
            return EMPTY_ROOT
        raise ValueError(f"empty or reversed range [{start}, {end})")
    parts: list[bytes] = []
    lo = start
    while lo < end:
        height = (end - lo).bit_length() - 1
        while lo & ((1 << height) - 1):  # not aligned to this size: take a smaller subtree
            height -= 1
        parts.append(subtree(height, lo >> height))
        lo += 1 << height
    acc = parts[-1]
    for part in reversed(parts[:-1]):
        acc = node_hash(part, acc)
    return acc


def tree_hash(size: int, subtree: SubtreeHash) -> bytes:
    """The root hash of the tree of ``size`` leaves."""
    return EMPTY_ROOT if size == 0 else range_hash(0, size, subtree)


def inclusion_proof(index: int, size: int, subtree: SubtreeHash) -> list[bytes]:
    """RFC 6962 PATH(index, D[0:size]): sibling hashes from the leaf up to the root's child."""
    if not 0 <= index < size:
        raise ValueError(f"index {index} is not in a tree of size {size}")
    proof: list[bytes] = []
    lo, hi = 0, size
    while hi - lo > 1:
        k = _split(hi - lo)
        if index - lo < k:
            proof.append(range_hash(lo + k, hi, subtree))
            hi = lo + k
        else:
            proof.append(range_hash(lo, lo + k, subtree))
            lo = lo + k
    proof.reverse()
    return proof


def consistency_proof(old_size: int, new_size: int, subtree: SubtreeHash) -> list[bytes]:
    """RFC 6962 PROOF(old_size, D[0:new_size]); empty when the sizes are equal or the old tree empty."""
    if not 0 <= old_size <= new_size:
        raise ValueError(f"no consistency proof from size {old_size} to {new_size}")
    if old_size in (0, new_size):
        return []
    proof: list[bytes] = []
    m, lo, hi, whole = old_size, 0, new_size, True
    while True:
        n = hi - lo
        if m == n:
            if not whole:
                proof.append(range_hash(lo, hi, subtree))
            break
        k = _split(n)
        if m <= k:
            proof.append(range_hash(lo + k, hi, subtree))
            hi = lo + k
        else:
            proof.append(range_hash(lo, lo + k, subtree))
            m, lo, whole = m - k, lo + k, False
    proof.reverse()
    return proof


def root_from_inclusion(index: int, size: int, leaf: bytes, proof: Sequence[bytes]) -> bytes:
    """The root an inclusion proof leads to (RFC 9162 §2.1.3.2); raises if the proof is malformed."""
    if not 0 <= index < size:
        raise LogVerificationError(f"index {index} is not in a tree of size {size}")
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if len(p) != HASH_SIZE or sn == 0:
            raise LogVerificationError("the inclusion proof is too long or holds a malformed hash")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise LogVerificationError("the inclusion proof is too short")
    return r


def verify_inclusion(index: int, size: int, leaf: bytes, proof: Sequence[bytes], root: bytes) -> None:
    """Raise ``LogVerificationError`` unless ``proof`` puts ``leaf`` at ``index`` under ``root``."""
    if root_from_inclusion(index, size, leaf, proof) != root:
        raise LogVerificationError(
            f"the inclusion proof for entry {index} does not lead to the root of tree size {size}")


def verify_consistency(old_size: int, new_size: int, old_root: bytes, new_root: bytes,
                       proof: Sequence[bytes]) -> None:
    """Raise ``LogVerificationError`` unless the tree ``old_root`` is a prefix of ``new_root`` (RFC 9162 §2.1.4.2)."""
    if not 0 <= old_size <= new_size:
        raise LogVerificationError(f"the log shrank from {old_size} to {new_size} entries")
    if old_size == new_size:
        if proof or old_root != new_root:
            raise LogVerificationError(f"two different roots for the same tree size {old_size}: a forked log")
        return
    if old_size == 0:
        if proof:
            raise LogVerificationError("a consistency proof from the empty tree must be empty")
        return
    if not proof or any(len(p) != HASH_SIZE for p in proof):
        raise LogVerificationError("the consistency proof is empty or holds a malformed hash")
    path = list(proof)
    if old_size & (old_size - 1) == 0:
        path.insert(0, old_root)
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise LogVerificationError("the consistency proof is too long")
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    if sn != 0 or fr != old_root or sr != new_root:
        raise LogVerificationError(
            f"the tree of size {old_size} is not a prefix of the tree of size {new_size}: a forked or rewritten log")


class MemoryTree:
    """A whole tree in memory: ``levels[h][i]`` is the hash of complete subtree ``(h, i)``.

    For verifiers that replay every entry, and for tests; the service reads hashes from tiles.
    """

    def __init__(self, leaf_hashes: Sequence[bytes] = ()) -> None:
        self.levels: list[list[bytes]] = [[]]
        for h in leaf_hashes:
            self.append_hash(h)

    @property
    def size(self) -> int:
        return len(self.levels[0])

    def append(self, entry: bytes) -> int:
        return self.append_hash(leaf_hash(entry))

    def append_hash(self, leaf: bytes) -> int:
        index = len(self.levels[0])
        self.levels[0].append(leaf)
        height, i = 0, index
        while i & 1:
            if len(self.levels) == height + 1:
                self.levels.append([])
            row = self.levels[height]
            self.levels[height + 1].append(node_hash(row[i - 1], row[i]))
            height, i = height + 1, i >> 1
        return index

    def subtree(self, height: int, index: int) -> bytes:
        try:
            return self.levels[height][index]
        except IndexError:
            raise ValueError(f"no complete subtree ({height}, {index}) in a tree of size {self.size}") from None

    def root(self, size: int | None = None) -> bytes:
        size = self.size if size is None else size
        if size > self.size:
            raise ValueError(f"the tree has only {self.size} leaves, not {size}")
        return tree_hash(size, self.subtree)
