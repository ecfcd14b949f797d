"""The transparency log, read-only and public, as C2SP tlog-tiles static resources.

``/log/checkpoint`` (mutable: a few seconds of caching), ``/log/tile/<L>/<N>[.p/<W>]`` and
``/log/tile/entries/<N>[.p/<W>]`` (full tiles never change: cached for a year), and
``/log/proof/{document_id}[?version=N]``, the C2SP tlog-proof of a document's newest (or version N's)
registration entry, which ``kyso log verify-proof`` and Go's sumdb/tlog check offline.
The same files come out of `kyso log export` for any web server or CDN.
"""
from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response

from core.db import transaction
from pki.transparency import service
from pki.transparency.proof import FILE_EXTENSION
from pki.transparency.tiles import parse_tile_path
from pki.transparency.witness_client import cosigned_checkpoint

from ..deps import ContainerDep
from ..schemas import error_responses

router = APIRouter(prefix="/log", tags=["transparency log"], responses=error_responses(400, 404, 503))
TEXT = "text/plain; charset=utf-8"
OCTETS = "application/octet-stream"
IMMUTABLE = "public, max-age=31536000, immutable"
SHORT = "public, max-age=5"


@router.get("/checkpoint", summary="The log's newest signed checkpoint (C2SP tlog-checkpoint)",
            response_class=Response, responses={200: {"content": {"text/plain": {}}}})
def checkpoint(container: ContainerDep) -> Response:
    with transaction(container.sessions, read_only=True) as session:
        note = cosigned_checkpoint(session, service.current_checkpoint(session), container.witnesses.verifiers)
    return Response(note.encode(), media_type=TEXT, headers={"Cache-Control": SHORT})


@router.get("/tile/{path:path}", summary="A hash tile or an entry bundle (C2SP tlog-tiles)", response_class=Response,
            responses={200: {"content": {OCTETS: {}}}})
def tile(path: str, container: ContainerDep) -> Response:
    t = parse_tile_path("tile/" + path)
    with transaction(container.sessions, read_only=True) as session:
        if t.level is None:
            data = service.read_bundle(session, t.index, t.width)
        else:
            data = service.read_tile(session, t.level, t.index, t.width)
    return Response(data, media_type=OCTETS, headers={"Cache-Control": IMMUTABLE if t.is_full else SHORT})


@router.get("/proof/{document_id}", summary="Inclusion proof of a document's registration (C2SP tlog-proof)",
            response_class=Response, responses={200: {"content": {"text/plain": {}}}})
def proof(document_id: str, container: ContainerDep,
          version: Annotated[int | None, Query(ge=1, le=1_000_000, description="A registered version; "
                                               "default: the newest registration")] = None) -> Response:
    with transaction(container.sessions, read_only=True) as session:
        text = service.proof_for_document(session, document_id[:64], version).encode()
    name = document_id if document_id.isascii() and document_id.isalnum() else "document"
    name += f"-v{version}" if version is not None else ""
    return Response(text.encode(), media_type=TEXT, headers={
        "Cache-Control": SHORT, "Content-Disposition": f'inline; filename="{name}{FILE_EXTENSION}"'})
