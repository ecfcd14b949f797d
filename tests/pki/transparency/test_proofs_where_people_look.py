"""Proofs where people look (issue 20, item 2): the citizen page, the verification report, the proof download.

Nothing says "logged" unless kyso verified the inclusion proof against the log's key and the newest
checkpoint it has seen. Each attack leaves storage lying in one way — an entry filed under another
document, a checkpoint rolled back to an older one, a checkpoint re-signed over a forked root, a
tampered tile — and the page and the report must then not say "logged".
"""
from __future__ import annotations

import base64
import json
import re
from io import BytesIO
from pathlib import Path
from typing import Any, cast

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pypdf import PdfReader
from sqlalchemy import select, update
from typer.testing import CliRunner

from api.cli import app as cli
from api.container import Container
from core.db import transaction
from pki.transparency import service
from pki.transparency.entry import Entry, EntryType
from pki.transparency.errors import LogVerificationError
from pki.transparency.merkle import HASH_SIZE
from pki.transparency.models import LogCheckpoint, LogEntry, LogTile, TransparencyLog
from pki.transparency.note import Checkpoint, b64
from pki.transparency.proof import TlogProof, check_document_proof
from signing.create import report_pdf
from signing.registry import lifecycle
from tests.helpers.signing import CONSENTED, request
from tests.helpers.tlog import run_tlogcheck


def _sign(pki: Container, specialist: str, pdf: bytes) -> tuple[str, bytes]:
    result = pki.signing.sign(request(pdf, specialist), actor="test", activation=CONSENTED)
    return result.document_id, result.pdf


def _log_lines(html: str) -> dict[str, str]:
    return {m.group(1): re.sub(r"<[^>]+>", "", m.group(2)) for m in
            re.finditer(r'<p data-log="([a-z_]+)">(.*?)</p>', html, re.S)}


def _registration(pki: Container, document: str) -> int:
    with transaction(pki.sessions, read_only=True) as session:
        idx = service.registration_index(session, document)
    assert idx is not None
    return idx


def _verify_json(client: TestClient, pdf: bytes, **params: str) -> dict[str, Any]:
    r = client.post("/api/v1/verify", files={"file": ("x.pdf", pdf, "application/pdf")}, params=params)
    assert r.status_code == 200, r.text
    return cast(dict[str, Any], r.json())


def test_page_says_pending_then_logged_with_a_proof_that_verifies(client: TestClient, pki: Container,
                                                                  specialist: str, sample_pdf: bytes) -> None:
    document, _ = _sign(pki, specialist, sample_pdf)
    page = client.get(f"/v/{document}")
    assert page.status_code == 200
    assert _log_lines(page.text) == {"pending": "Đang ghi vào sổ công khai (vài giây)."}
    assert page.text.count("data-verdict") == 1  # one verdict; the log is a plain line
    service.sequence_all(pki.pki)
    idx = _registration(pki, document)

    page = client.get(f"/v/{document}")
    lines = _log_lines(page.text)
    assert set(lines) == {"logged"}
    assert lines["logged"].startswith(f"Đã ghi vào sổ công khai: mục số {idx}, lúc ")
    assert page.text.count("data-verdict") == 1
    assert f'href="/log/proof/{document}?version=1"' in page.text and 'href="/log/checkpoint"' in page.text
    english = _log_lines(client.get(f"/v/{document}?lang=en").text)
    assert english["logged"].startswith(f"Recorded in the public log: entry number {idx}, at ")

    download = client.get(f"/log/proof/{document}?version=1")
    assert download.status_code == 200
    assert f'filename="{document}-v1.tlog-proof"' in download.headers["content-disposition"]
    cp, entry = check_document_proof(TlogProof.parse(download.text), service.verifier(pki.pki), document_id=document,
                                     version=1)
    assert entry.type == EntryType.DOCUMENT_REGISTERED and TlogProof.parse(download.text).index == idx
    assert cp.size == service.log_info(pki.pki).size


def test_proof_versions_over_http(client: TestClient, pki: Container, specialist: str, sample_pdf: bytes) -> None:
    document, _ = _sign(pki, specialist, sample_pdf)
    service.sequence_all(pki.pki)
    assert client.get(f"/log/proof/{document}?version=1").status_code == 200
    missing = client.get(f"/log/proof/{document}?version=7")
    assert missing.status_code == 404 and "version 7" in missing.json()["error"]["message"]
    for bad in ("0", "-1", "x", "99999999999"):
        r = client.get(f"/log/proof/{document}?version={bad}")
        assert r.status_code in (400, 422) and r.json()["error"]["code"], bad


def test_withdrawal_is_shown_with_its_own_entry(client: TestClient, pki: Container, specialist: str,
                                                sample_pdf: bytes) -> None:
    document, _ = _sign(pki, specialist, sample_pdf)
    service.sequence_all(pki.pki)
    lifecycle.withdraw(pki.pki, document, "error", actor="test")
    lines = _log_lines(client.get(f"/v/{document}").text)
    assert set(lines) == {"logged", "change_pending"}
    service.sequence_all(pki.pki)
    with transaction(pki.sessions, read_only=True) as session:
        (withdrawn_idx, _), = service.document_entries(session, document, (EntryType.DOCUMENT_WITHDRAWN,))
    lines = _log_lines(client.get(f"/v/{document}").text)
    assert set(lines) == {"logged", "withdrawn"}
    assert lines["withdrawn"].startswith(f"Việc thu hồi cũng đã ghi vào sổ công khai: mục số {withdrawn_idx}, ")
    english = _log_lines(client.get(f"/v/{document}?lang=en").text)
    assert english["withdrawn"].startswith(f"The withdrawal is recorded in the public log too: entry number "
                                           f"{withdrawn_idx}")


def test_report_carries_index_checkpoint_and_proof(client: TestClient, pki: Container, specialist: str,
                                                   sample_pdf: bytes) -> None:
    document, pdf = _sign(pki, specialist, sample_pdf)
    pending = _verify_json(client, pdf)
    kyso = [s for s in pending["signatures"] if s["registered"]]
    assert kyso and all(s["log"]["state"] == "pending" and s["log"]["index"] is None for s in kyso)
    service.sequence_all(pki.pki)
    report = _verify_json(client, pdf)
    log = next(s["log"] for s in report["signatures"] if s["registered"])
    info = service.log_info(pki.pki)
    assert log["state"] == "logged" and log["index"] == _registration(pki, document) and log["version"] == 1
    assert (log["origin"], log["tree_size"], log["root_hash"]) == (info.origin, info.size, b64(info.root_hash))
    _, entry = check_document_proof(TlogProof.parse(log["proof"]), service.verifier(pki.pki), document_id=document)
    assert entry.get("document") == document
    html = client.post("/api/v1/verify?format=html&lang=en", files={"file": ("x.pdf", pdf, "application/pdf")})
    assert f"Logged in the public log: entry {log['index']} (version 1)" in html.text
    assert f'/log/proof/{document}?version=1' in html.text
    vi = client.post("/api/v1/verify?format=html", files={"file": ("x.pdf", pdf, "application/pdf")})
    assert f"Đã ghi vào sổ công khai: mục số {log['index']}" in vi.text


def test_pdf_report_has_one_plain_log_line(pki: Container, specialist: str, sample_pdf: bytes) -> None:
    _, pdf = _sign(pki, specialist, sample_pdf)
    service.sequence_all(pki.pki)
    report = pki.verifier.verify(pdf)
    log = next(s.log for s in report.signatures if s.log)
    assert log.state == "logged"
    settings = pki.settings
    made = report_pdf.to_pdf(report, "en", settings.stamp_font, settings.stamp_font_bold)
    flat = " ".join("".join(p.extract_text() for p in PdfReader(BytesIO(made)).pages).split())
    assert f"Logged in the public log: entry {log.index} (version 1)" in flat


# -- attacks: storage lies one way; nothing says "logged" ------------------------------------------------------


def _assert_never_logged(client: TestClient, document: str, pdf: bytes) -> None:
    lines = _log_lines(client.get(f"/v/{document}").text)
    assert "logged" not in lines and lines.get("unconfirmed") == "Chưa xác nhận được văn bản này trong sổ công khai."
    english = client.get(f"/v/{document}?lang=en").text
    assert "Recorded in the public log" not in english
    log = next(s["log"] for s in _verify_json(client, pdf)["signatures"] if s["registered"])
    assert log["state"] == "unconfirmed" and log["index"] is None and log["proof"] is None and log["reason"]


def test_a_proof_for_another_document_is_not_logged(client: TestClient, pki: Container, specialist: str,
                                                    sample_pdf: bytes) -> None:
    mine, pdf = _sign(pki, specialist, sample_pdf)
    other, _ = _sign(pki, specialist, sample_pdf)
    service.sequence_all(pki.pki)
    mine_idx, other_idx = _registration(pki, mine), _registration(pki, other)
    with transaction(pki.sessions) as session:  # storage files the other document's entry under mine
        session.execute(update(LogEntry).where(LogEntry.idx == mine_idx).values(document_id="ZZZZZZZZZZZZ"))
        session.execute(update(LogEntry).where(LogEntry.idx == other_idx).values(document_id=mine))
    _assert_never_logged(client, mine, pdf)
    with transaction(pki.sessions, read_only=True) as session:  # the download is what storage says...
        proof = service.proof_for_document(session, mine)
    with pytest.raises(LogVerificationError, match="not " + mine):  # ...and an offline check refuses it
        check_document_proof(proof, service.verifier(pki.pki), document_id=mine)


def test_a_stale_checkpoint_is_not_logged(client: TestClient, pki: Container, specialist: str,
                                          sample_pdf: bytes) -> None:
    document, pdf = _sign(pki, specialist, sample_pdf)
    service.sequence_all(pki.pki)
    old = service.log_info(pki.pki)
    _sign(pki, specialist, sample_pdf)
    service.sequence_all(pki.pki)
    assert "logged" in _log_lines(client.get(f"/v/{document}").text)  # the newest checkpoint is seen
    with transaction(pki.sessions) as session:  # one client is now served the older (validly signed) tree
        session.execute(update(TransparencyLog).where(TransparencyLog.id == 1).values(
            size=old.size, root_hash=old.root_hash, checkpoint=old.checkpoint))
    with transaction(pki.sessions, read_only=True) as session:  # the entry is in the old tree: its proof checks
        proof = service.proof_for_document(session, document)
    check_document_proof(proof, service.verifier(pki.pki), document_id=document)
    _assert_never_logged(client, document, pdf)  # but it is older than what was already seen


def test_a_forked_checkpoint_is_not_logged(client: TestClient, pki: Container, specialist: str,
                                           sample_pdf: bytes) -> None:
    document, pdf = _sign(pki, specialist, sample_pdf)
    service.sequence_all(pki.pki)
    with transaction(pki.sessions) as session:  # the operator's key signs another root at the same size
        row = session.get(TransparencyLog, 1)
        assert row is not None
        forged = bytes(HASH_SIZE)
        note = Checkpoint(row.origin, row.size, forged).sign([service._signer(pki.pki, row)])
        row.root_hash, row.checkpoint = forged, note
        session.add(LogCheckpoint(size=row.size + 10_000, note=note, created_at=row.updated_at))
    _assert_never_logged(client, document, pdf)


def test_a_tampered_tile_is_not_logged(client: TestClient, pki: Container, specialist: str,
                                       sample_pdf: bytes) -> None:
    document, pdf = _sign(pki, specialist, sample_pdf)
    _sign(pki, specialist, sample_pdf)
    service.sequence_all(pki.pki)
    with transaction(pki.sessions) as session:  # one hash the proof path is made of, changed
        tile = session.execute(select(LogTile).where(LogTile.level == 0, LogTile.idx == 0)).scalar_one()
        data = bytearray(tile.data)
        sibling = _registration(pki, document) ^ 1
        data[sibling * 32] ^= 1
        tile.data = bytes(data)
    _assert_never_logged(client, document, pdf)


# -- offline: kyso log verify-proof and Go's sumdb/tlog on the downloaded file ---------------------------------


def _download(client: TestClient, pki: Container, specialist: str, sample_pdf: bytes, tmp_path: Path
              ) -> tuple[str, Path]:
    document, _ = _sign(pki, specialist, sample_pdf)
    service.sequence_all(pki.pki)
    r = client.get(f"/log/proof/{document}?version=1")
    assert r.status_code == 200
    path = tmp_path / f"{document}.tlog-proof"
    path.write_bytes(r.content)
    return document, path


def _tamper_line(path: Path, tmp_path: Path) -> Path:
    """The proof with one inclusion-path hash changed by one bit."""
    text = path.read_text()
    head, _, checkpoint = text.partition("\n\n")
    lines = head.split("\n")
    at = next(i for i, line in enumerate(lines) if line.startswith("index ")) + 1
    assert at < len(lines), "a proof of one entry in a log of more than one has a path"
    raw = bytearray(base64.b64decode(lines[at]))
    raw[0] ^= 1
    lines[at] = b64(bytes(raw))
    bad = tmp_path / "tampered.tlog-proof"
    bad.write_text("\n".join(lines) + "\n\n" + checkpoint)
    return bad


def test_cli_verify_proof_offline(client: TestClient, pki: Container, specialist: str, sample_pdf: bytes,
                                  tmp_path: Path) -> None:
    document, path = _download(client, pki, specialist, sample_pdf, tmp_path)
    key = service.log_info(pki.pki).vkey
    runner = CliRunner()
    ok = runner.invoke(cli, ["log", "verify-proof", str(path), "--key", key, "--document", document, "--version", "1",
                             "--json"])
    assert ok.exit_code == 0, ok.output
    got = json.loads(ok.output)
    assert got["ok"] and got["index"] == _registration(pki, document) and got["entry"]["document"] == document
    assert runner.invoke(cli, ["log", "verify-proof", str(path), "--key", key]).exit_code == 0

    other = runner.invoke(cli, ["log", "verify-proof", str(path), "--key", key, "--document", "ZZZZZZZZZZZZ"])
    assert other.exit_code == 1 and "not ZZZZZZZZZZZZ" in other.output
    wrong_version = runner.invoke(cli, ["log", "verify-proof", str(path), "--key", key, "--version", "2"])
    assert wrong_version.exit_code == 1 and "not 2" in wrong_version.output
    bad = runner.invoke(cli, ["log", "verify-proof", str(_tamper_line(path, tmp_path)), "--key", key, "--json"])
    assert bad.exit_code == 1 and json.loads(bad.output)["ok"] is False

    stranger = "other.example/log+00000000+" + b64(bytes([1]) + bytes(32))
    assert runner.invoke(cli, ["log", "verify-proof", str(path), "--key", stranger]).exit_code == 1
    garbage = tmp_path / "garbage.tlog-proof"
    garbage.write_text("not a proof")
    assert runner.invoke(cli, ["log", "verify-proof", str(garbage), "--key", key]).exit_code == 1
    missing = runner.invoke(cli, ["log", "verify-proof", str(tmp_path / "nope"), "--key", key])
    assert missing.exit_code == 2 and "cannot read" in missing.output

    # a checkpoint seen elsewhere, same size, another root: a fork, whatever the proof says
    with transaction(pki.sessions, read_only=True) as session:
        row = session.get(TransparencyLog, 1)
        assert row is not None
        fork = Checkpoint(row.origin, row.size, bytes(HASH_SIZE)).sign([service._signer(pki.pki, row)])
    (tmp_path / "seen-elsewhere").write_text(fork)
    forked = runner.invoke(cli, ["log", "verify-proof", str(path), "--key", key, "--checkpoint",
                                 str(tmp_path / "seen-elsewhere")])
    assert forked.exit_code == 1 and "forked" in forked.output


def test_go_checker_verifies_the_downloaded_proof(client: TestClient, pki: Container, specialist: str,
                                                  sample_pdf: bytes, tmp_path: Path, tlogcheck: Path) -> None:
    document, path = _download(client, pki, specialist, sample_pdf, tmp_path)
    key = service.log_info(pki.pki).vkey
    ok, output = run_tlogcheck(tlogcheck, "-vkey", key, "-proof", str(path))
    assert ok, output
    proof = TlogProof.parse(path.read_text())
    assert proof.extra is not None and Entry.parse(proof.extra).get("document") == document
    ok, output = run_tlogcheck(tlogcheck, "-vkey", key, "-proof", str(_tamper_line(path, tmp_path)))
    assert not ok, output


def test_openapi_describes_the_log_record_and_the_version_parameter(client: TestClient) -> None:
    schema = cast(FastAPI, client.app).openapi()
    record = schema["components"]["schemas"]["LogRecord"]["properties"]
    assert {"state", "document_id", "version", "index", "origin", "tree_size", "root_hash", "proof"} <= set(record)
    assert set(record["state"]["enum"]) == {"logged", "pending", "unconfirmed", "absent"}
    signature = schema["components"]["schemas"]["SignatureReport"]["properties"]
    assert "log" in signature
    params = schema["paths"]["/log/proof/{document_id}"]["get"]["parameters"]
    version = next(p for p in params if p["name"] == "version")
    assert version["in"] == "query" and not version.get("required", False)


def test_a_replaced_log_key_is_not_logged(client: TestClient, pki: Container, specialist: str,
                                          sample_pdf: bytes) -> None:
    """Storage re-signs everything with a key of its own: the process remembers the key it first checked."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from pki.transparency.note import NoteSigner, raw_ed25519

    document, pdf = _sign(pki, specialist, sample_pdf)
    service.sequence_all(pki.pki)
    assert "logged" in _log_lines(client.get(f"/v/{document}").text)
    assert next(s["log"] for s in _verify_json(client, pdf)["signatures"] if s["registered"])["state"] == "logged"
    other = Ed25519PrivateKey.generate()
    with transaction(pki.sessions) as session:
        row = session.get(TransparencyLog, 1)
        assert row is not None
        public = raw_ed25519(other.public_key())
        row.public_key = public
        row.checkpoint = Checkpoint(row.origin, row.size, row.root_hash).sign(
            [NoteSigner(row.origin, public, other.sign)])
    _assert_never_logged(client, document, pdf)
