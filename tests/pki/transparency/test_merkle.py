"""RFC 6962 hashing and proofs, against the RFC's recursive definitions and the CT reference vectors."""
from __future__ import annotations

import hashlib

import pytest

from pki.transparency import merkle
from pki.transparency.errors import LogVerificationError
from pki.transparency.merkle import MemoryTree, consistency_proof, inclusion_proof, leaf_hash, node_hash

# The leaves of the Certificate Transparency reference tests (certificate-transparency, merkle_tree_test)
CT_LEAVES = [bytes.fromhex(h) for h in ["", "00", "10", "2021", "3031", "40414243", "5051525354555657",
                                         "606162636465666768696a6b6c6d6e6f"]]
CT_ROOT_8 = "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"


def mth(d: list[bytes]) -> bytes:
    """RFC 6962 §2.1, written from the definition."""
    if not d:
        return hashlib.sha256(b"").digest()
    if len(d) == 1:
        return leaf_hash(d[0])
    k = 1 << ((len(d) - 1).bit_length() - 1)
    return node_hash(mth(d[:k]), mth(d[k:]))


def path(m: int, d: list[bytes]) -> list[bytes]:
    if len(d) == 1:
        return []
    k = 1 << ((len(d) - 1).bit_length() - 1)
    return path(m, d[:k]) + [mth(d[k:])] if m < k else path(m - k, d[k:]) + [mth(d[:k])]


def subproof(m: int, d: list[bytes], b: bool) -> list[bytes]:
    n = len(d)
    if m == n:
        return [] if b else [mth(d)]
    k = 1 << ((n - 1).bit_length() - 1)
    return subproof(m, d[:k], b) + [mth(d[k:])] if m <= k else subproof(m - k, d[k:], False) + [mth(d[:k])]


def data(n: int) -> list[bytes]:
    return [f"entry {i}".encode() for i in range(n)]


def test_ct_reference_root() -> None:
    assert MemoryTree([leaf_hash(x) for x in CT_LEAVES]).root().hex() == CT_ROOT_8
    assert MemoryTree().root() == hashlib.sha256(b"").digest()


@pytest.mark.parametrize("n", range(70))
def test_root_matches_the_definition(n: int) -> None:
    d = data(n)
    tree = MemoryTree([leaf_hash(x) for x in d])
    for size in range(n + 1):
        assert tree.root(size) == mth(d[:size])


def test_proofs_match_the_definition_and_verify() -> None:
    d = data(37)
    tree = MemoryTree([leaf_hash(x) for x in d])
    for n in range(1, 38):
        root = tree.root(n)
        for m in range(n):
            p = inclusion_proof(m, n, tree.subtree)
            assert p == path(m, d[:n])
            merkle.verify_inclusion(m, n, leaf_hash(d[m]), p, root)
        for m in range(1, n + 1):
            p = consistency_proof(m, n, tree.subtree)
            assert p == (subproof(m, d[:n], True) if m < n else [])
            merkle.verify_consistency(m, n, tree.root(m), root, p)


def test_a_wrong_leaf_index_or_root_fails() -> None:
    d = data(11)
    tree = MemoryTree([leaf_hash(x) for x in d])
    p = inclusion_proof(5, 11, tree.subtree)
    with pytest.raises(LogVerificationError):
        merkle.verify_inclusion(5, 11, leaf_hash(b"forged"), p, tree.root())
    with pytest.raises(LogVerificationError):
        merkle.verify_inclusion(4, 11, leaf_hash(d[5]), p, tree.root())
    with pytest.raises(LogVerificationError):
        merkle.verify_inclusion(5, 11, leaf_hash(d[5]), p[:-1], tree.root())
    with pytest.raises(LogVerificationError):
        merkle.verify_inclusion(5, 11, leaf_hash(d[5]), [*p, p[0]], tree.root())
    with pytest.raises(LogVerificationError):
        merkle.verify_inclusion(11, 11, leaf_hash(d[5]), p, tree.root())


def test_a_fork_fails_consistency() -> None:
    d = data(20)
    honest = MemoryTree([leaf_hash(x) for x in d])
    forked = MemoryTree([leaf_hash(x) for x in d[:7] + [b"rewritten"] + d[8:]])
    p = consistency_proof(9, 20, forked.subtree)
    with pytest.raises(LogVerificationError, match="forked or rewritten"):
        merkle.verify_consistency(9, 20, honest.root(9), forked.root(20), p)
    with pytest.raises(LogVerificationError, match="forked"):
        merkle.verify_consistency(20, 20, honest.root(), forked.root(), [])
    with pytest.raises(LogVerificationError, match="shrank"):
        merkle.verify_consistency(20, 9, honest.root(), honest.root(9), [])
