"""kyso's transparency log: every certificate and signed document, in a public Merkle log.

Pure formats (no database) — importable by anyone, verifiers included:

- ``merkle``  RFC 6962 hashing, inclusion and consistency proofs
- ``tiles``   C2SP tlog-tiles paths, entry bundles, the tree stored as tiles
- ``note``    C2SP signed notes (Ed25519) and checkpoints, verifier keys
- ``proof``   C2SP tlog-proof, the offline inclusion proof
- ``entry``   the kyso log entry, one canonical encoding per event

The service around them (pending entries, sequencer, storage, read API) lives beside them.
"""
