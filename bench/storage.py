"""Figure 6, storage: bytes the registry keeps per document and the time to commit a version, for the
blob layout (each version stored as what kyso appended over its parent, ``signing/registry/versions.py``)
beside the layout before it (every version's whole file, as ``document_files.pdf`` held it).

The version chain is the one a civil-registration result goes through: (1) the specialist signs, visible
stamp, B-LT; (2) the agency seal, B-LT; (3) the archive timestamp that takes it to B-LTA (the upgrader,
as a policy that asks for B-LTA later would). "Before" runs the same chain with the store told to keep
every version whole, in the same transaction: the bytes the old column held, and the cost of writing
them. The commit time is ``SigningService._record`` and the upgrader's recording transaction, measured
around the call (registry row, blobs, signature records, audit entry, commit), per version.
"""
from __future__ import annotations

import statistics
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from tests.helpers.signing import CONSENTED, issue_credential

from .common import Figure, Results, say


@contextmanager
def _timed(owner: Any, name: str, into: list[float]) -> Iterator[None]:
    original = getattr(owner, name)

    def timed(*args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            into.append(time.perf_counter() - start)

    setattr(owner, name, timed)
    try:
        yield
    finally:
        setattr(owner, name, original)


@contextmanager
def _whole_copies(whole: bool) -> Iterator[None]:
    """The layout before: every version stored whole (``parent=None``), in the same transaction."""
    from signing.registry import versions

    original = versions.store
    if whole:
        def store(session: Any, blobs: Any, pdf: bytes, **_: Any) -> Any:
            return original(session, blobs, pdf, parent=None, parent_is_version=False, keep_input=False)

        versions.store = store  # type: ignore[assignment]  # the bench's stand-in for the old layout
    try:
        yield
    finally:
        versions.store = original  # type: ignore[assignment]  # put back


def _chain(inst, person: str, seal: str, pdf: bytes) -> str:  # type: ignore[no-untyped-def]
    from sqlalchemy import update

    from core import clock
    from core.db import transaction
    from signing.create import upgrade
    from signing.create.service import AppearanceOptions, SignRequest
    from signing.registry.models import SignedDocument, UpgradeStatus

    service = inst.container.signing

    def ask(data: bytes, credential: str, visible: bool) -> SignRequest:
        return SignRequest(pdf=data, document_type="dossier-result", commune_code="00004", credential_id=credential,
                           level="B-LT", appearance=AppearanceOptions(visible=visible))

    first = service.sign(ask(pdf, person, True), actor="bench", activation=CONSENTED)
    service.sign(ask(first.pdf, seal, False), actor="bench", activation=CONSENTED)
    with transaction(inst.container.sessions) as session:
        session.execute(update(SignedDocument).where(SignedDocument.id == first.document_id).values(
            requested_level="B-LTA", upgrade_status=UpgradeStatus.PENDING, next_attempt_at=clock.now()))
    if upgrade.upgrade_one(service, first.document_id) != "upgraded":
        raise RuntimeError("the archive timestamp upgrade did not happen")
    return first.document_id


def _stored(inst, document_id: str) -> tuple[int, int]:  # type: ignore[no-untyped-def]
    """(bytes the document's versions reference in the blob store, sum of its versions' sizes)."""
    from sqlalchemy import select

    from core.db import transaction
    from signing.registry.blobs import FileBlobStore
    from signing.registry.models import Blob, DocumentFile

    with transaction(inst.container.sessions) as session:
        rows = session.execute(select(DocumentFile).where(DocumentFile.document_id == document_id)).scalars().all()
        inputs = {r.base_sha256 for r in rows if r.base_sha256} - {r.sha256 for r in rows}  # kept inputs
        names = {r.blob_sha256 for r in rows} | inputs
        sizes = dict(session.execute(select(Blob.sha256, Blob.size).where(Blob.sha256.in_(names))).tuples().all())
    files = FileBlobStore(inst.settings.blob_dir)
    for name in names - set(sizes):
        sizes[name] = files.path(name).stat().st_size
    return sum(sizes.values()), sum(r.size for r in rows)


@contextmanager
def _layout(inst, layout: str) -> Iterator[None]:  # type: ignore[no-untyped-def]
    """``whole`` (the layout before, in the table), or tails in the ``database`` or ``filesystem`` store."""
    backend = inst.settings.blob_store
    inst.settings.blob_store = "filesystem" if layout == "filesystem" else "database"
    try:
        with _whole_copies(layout == "whole"):
            yield
    finally:
        inst.settings.blob_store = backend


LAYOUTS = ("whole", "database", "filesystem")


def measure(results: Results, inst, docs: dict[str, bytes], *, n: int) -> None:  # type: ignore[no-untyped-def]
    """``n`` documents per layout and per file, the layouts interleaved (whole, database, filesystem, whole, …)."""
    from signing.create import upgrade
    from signing.create.service import SigningService

    say(f"[6] storage: {n} documents per layout through sign (B-LT) → seal (B-LT) → B-LTA")
    person = issue_credential(inst.container, name="Trần Văn Lưu", id_number="001190000777")
    seal = issue_credential(inst.container, "seal", name="UBND Phường Ba Đình")
    section = "6. storage per document (person B-LT → seal B-LT → archive timestamp B-LTA: 3 versions)"
    before_name = "every version whole (the layout before)"
    for doc_name, pdf in docs.items():
        stored: dict[str, list[int]] = {layout: [] for layout in LAYOUTS}
        commits: dict[str, list[float]] = {layout: [] for layout in LAYOUTS}
        total = 0
        for i in range(len(LAYOUTS) * n):
            layout = LAYOUTS[i % len(LAYOUTS)]
            spent: list[float] = []
            with _layout(inst, layout), _timed(SigningService, "_record", spent), \
                    _timed(upgrade, "_record_upgrade", spent):
                document_id = _chain(inst, person, seal, pdf + b"\n%" + str(i).encode() + b"\n")
            kept, total = _stored(inst, document_id)
            stored[layout].append(kept)
            commits[layout].extend(spent)
        before, after = _mean(stored["whole"]), _mean(stored["database"])
        results.add(Figure(section, f"bytes stored, {doc_name} ({len(pdf) / 1024:,.0f} KB input)", after / 1024,
                           "KB/doc", before_name, before / 1024, higher_is_better=False,
                           note=f"{after / before:.0%} of before (the same with the filesystem store: "
                                f"{_mean(stored['filesystem']) / 1024:,.0f} KB); the 3 versions total "
                                f"{total / 1024:,.0f} KB; the input is not kept (the level was reached at signing)"))
        whole_ms = 1000 * statistics.median(commits["whole"])
        for layout in ("database", "filesystem"):
            results.add(Figure(section, f"commit a version, {doc_name}, {layout} store",
                               1000 * statistics.median(commits[layout]), "ms/version", before_name, whole_ms,
                               higher_is_better=False,
                               note="registry transaction of a signature or an upgrade (rows, blobs"
                                    + (" written and fsynced to files before it" if layout == "filesystem" else "")
                                    + f", signature records, audit, commit) on {inst.backend}; the median of the "
                                    f"chain's {len(commits[layout])} versions"))


def _mean(values: list[int]) -> float:
    return sum(values) / len(values) if values else float("nan")


__all__ = ["measure"]
