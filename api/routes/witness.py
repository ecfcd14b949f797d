"""kyso as a transparency-log witness (C2SP tlog-witness): ``POST /witness/add-checkpoint`` and the monitoring
read ``GET /witness/{origin hash}/checkpoint``. Public: the log's signature on the checkpoint is the only
authentication the protocol has. Answers are plain text with the spec's status codes (not kyso's JSON)."""
from __future__ import annotations

import hashlib

from fastapi import APIRouter, Request, Response
from starlette.concurrency import run_in_threadpool

from core.db import transaction
from core.errors import KysoError, NotFound
from pki.transparency import witness

from ..deps import ContainerDep
from ..errors import witness_error

router = APIRouter(tags=["witness"])
PLAIN = "text/plain; charset=utf-8"
TEXT: dict[str, object] = {PLAIN: {"schema": {"type": "string"}}}
ADD_RESPONSES: dict[int | str, dict[str, object]] = {
    200: {"description": "this witness's cosignature line(s) on the checkpoint",
          "content": TEXT},
    400: {"description": "not an add-checkpoint body, or old size above the checkpoint's size",
          "content": TEXT},
    403: {"description": "no valid signature by the log's key", "content": TEXT},
    404: {"description": "this witness does not cosign for the checkpoint's origin",
          "content": TEXT},
    409: {"description": "old size is not the size this witness last cosigned; the body is that size",
          "content": {"text/x.tlog.size": {"schema": {"type": "string"}}}},
    422: {"description": "the checkpoint is not consistent with what this witness cosigned (bad proof, fork)",
          "content": TEXT},
    503: {"description": "the database or keystore cannot be reached; retry", "content": TEXT},
}


@router.post("/witness/add-checkpoint", summary="Cosign a checkpoint (C2SP tlog-witness add-checkpoint)",
             response_class=Response, responses=ADD_RESPONSES)
async def add_checkpoint(request: Request, container: ContainerDep) -> Response:
    declared = request.headers.get("content-length", "")
    body = bytearray()
    try:
        if declared.isdigit() and int(declared) > witness.MAX_REQUEST:
            raise witness.WitnessRequestMalformed(f"an add-checkpoint request is at most {witness.MAX_REQUEST} bytes")
        async for chunk in request.stream():
            body += chunk
            if len(body) > witness.MAX_REQUEST:
                raise witness.WitnessRequestMalformed(
                    f"an add-checkpoint request is at most {witness.MAX_REQUEST} bytes")
        lines = await run_in_threadpool(witness.add_checkpoint, container.sessions, container.pki.keystores,
                                        bytes(body))
    except KysoError as exc:
        return witness_error(exc)
    return Response(lines, media_type=PLAIN, headers={"Cache-Control": "no-store"})


@router.get("/witness/{origin_hash}/checkpoint", summary="The latest checkpoint this witness cosigned for a log",
            response_class=Response, responses={
                200: {"description": "the checkpoint with the log's signature and this witness's cosignature",
                      "content": TEXT},
                404: {"description": "no checkpoint cosigned for that log", "content": TEXT}})
async def latest_checkpoint(origin_hash: str, container: ContainerDep) -> Response:
    def read() -> str:
        with transaction(container.sessions, read_only=True) as session:
            for row in witness.logs(session):
                if hashlib.sha256(row.origin.encode()).hexdigest() == origin_hash and row.checkpoint:
                    return row.checkpoint
        raise NotFound("this witness has cosigned no checkpoint for that origin hash", code="witness_no_checkpoint")

    try:
        note = await run_in_threadpool(read)
    except KysoError as exc:
        return witness_error(exc)
    return Response(note, media_type=PLAIN, headers={"Cache-Control": "public, max-age=10"})
