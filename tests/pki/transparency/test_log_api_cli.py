"""The log's public read API (C2SP static tiles) and its command line."""
from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from typer.testing import CliRunner

from api.cli import app as cli
from api.container import Container
from api.scheduler import sequence_once
from core.db import transaction
from pki.transparency import service
from pki.transparency.entry import Entry
from pki.transparency.models import LogPending
from pki.transparency.note import open_checkpoint
from pki.transparency.proof import TlogProof
from pki.transparency.tiles import decode_bundle
from signing.errors import DocumentStateConflict
from signing.registry import lifecycle
from tests.helpers.signing import COMMUNE, CONSENTED, request


def test_checkpoint_tiles_bundles_and_proof_over_http(client: TestClient, pki: Container, specialist: str,
                                                     sample_pdf: bytes) -> None:
    document = pki.signing.sign(request(sample_pdf, specialist), actor="test", activation=CONSENTED).document_id
    waiting = client.get(f"/log/proof/{document}")
    assert waiting.status_code == 404
    assert waiting.json()["error"]["code"] == "not_yet_logged" and "wait a second" in waiting.json()["error"]["message"]
    service.sequence_all(pki.pki)

    r = client.get("/log/checkpoint")
    assert r.status_code == 200 and r.headers["content-type"] == "text/plain; charset=utf-8"
    assert r.headers["cache-control"] == "public, max-age=5"
    cp, _ = open_checkpoint(r.content, service.verifier(pki.pki))
    assert 0 < cp.size < 256
    tile = client.get(f"/log/tile/0/000.p/{cp.size}")
    assert tile.status_code == 200 and tile.headers["content-type"] == "application/octet-stream"
    assert len(tile.content) == 32 * cp.size and tile.headers["cache-control"] == "public, max-age=5"
    bundle = client.get(f"/log/tile/entries/000.p/{cp.size}")
    assert bundle.status_code == 200 and len(decode_bundle(bundle.content)) == cp.size
    assert client.get("/log/tile/0/000").status_code == 404  # not full yet
    assert client.get(f"/log/tile/0/000.p/{cp.size + 1}").status_code == 404  # beyond the checkpoint
    assert client.get(f"/log/tile/entries/000.p/{cp.size + 1}").status_code == 404
    for junk in ("0/x999/x999/x999/x999/x999/x999/x999/999", "entries/x999/x999/x999/x999/x999/x999/999.p/3",
                 "63/x999/x999/999", "0/5", "0/000.p/0", "99/000", "entries/x000/001", "entries/..%2Fcheckpoint"):
        bad = client.get(f"/log/tile/{junk}")
        assert bad.status_code in (404, 422) and bad.json()["error"]["code"], junk

    proof = client.get(f"/log/proof/{document}")
    assert proof.status_code == 200 and proof.headers["content-type"] == "text/plain; charset=utf-8"
    assert f'filename="{document}.tlog-proof"' in proof.headers["content-disposition"]
    _, entry = TlogProof.parse(proof.text).verify_extra(service.verifier(pki.pki))
    assert Entry.parse(entry).get("document") == document
    assert client.get("/log/proof/NOSUCHDOC").status_code == 404


def test_a_full_tile_is_immutable(client: TestClient, pki: Container) -> None:
    from core import clock
    from pki.transparency import events

    with transaction(pki.sessions) as session:
        for i in range(300):
            events.record(session, events.audit_anchor(seq=i, head=f"{i:064x}", at=clock.now()))
    assert sequence_once(pki) >= 300  # the scheduler's pass: one batch takes them all
    r = client.get("/log/tile/0/000")
    assert r.status_code == 200 and len(r.content) == 8192
    assert r.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert len(decode_bundle(client.get("/log/tile/entries/000").content)) == 256


def test_a_rolled_back_event_leaves_no_log_entry(pki: Container, specialist: str, sample_pdf: bytes) -> None:
    document = pki.signing.sign(request(sample_pdf, specialist), actor="test", activation=CONSENTED).document_id
    lifecycle.withdraw(pki.pki, document, "error", actor="test")
    with pytest.raises(DocumentStateConflict):  # refused: already withdrawn; what matters is what it left behind
        lifecycle.withdraw(pki.pki, document, "again", actor="test")
    with transaction(pki.sessions, read_only=True) as session:
        pending = [Entry.parse(e).type.value for e in session.execute(select(LogPending.entry)).scalars()]
    assert pending.count("document-withdrawn") == 1 and pending.count("document-registered") == 1


def test_supersession_is_logged(pki: Container, specialist: str, sample_pdf: bytes) -> None:
    old = pki.signing.sign(request(sample_pdf, specialist), actor="test", activation=CONSENTED).document_id
    new = pki.signing.sign(request(sample_pdf, specialist), actor="test", activation=CONSENTED).document_id
    lifecycle.supersede(pki.pki, old, by=new, reason="corrected", actor="test")
    service.sequence_all(pki.pki)
    with transaction(pki.sessions, read_only=True) as session:
        mine = [e for _, e in service.entries_for_commune(session, COMMUNE) if e.get("document") == old]
    assert [e.type.value for e in mine] == ["document-registered", "document-superseded"]
    assert mine[1].get("superseded-by") == new


def test_cli_key_monitor_and_help(pki: Container, specialist: str, sample_pdf: bytes, monkeypatch, tmp_path) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr("api.cli.common.container", lambda: pki)
    document = pki.signing.sign(request(sample_pdf, specialist), actor="test", activation=CONSENTED).document_id
    runner = CliRunner()
    sequenced = runner.invoke(cli, ["log", "sequence", "--json"])
    assert sequenced.exit_code == 0 and json.loads(sequenced.output)["appended"] >= 1
    key = runner.invoke(cli, ["log", "key"])
    assert key.exit_code == 0 and key.output.strip() == service.log_info(pki.pki).vkey
    init = runner.invoke(cli, ["log", "init", "--json"])
    assert init.exit_code == 0 and json.loads(init.output)["created"] is False
    monitor = runner.invoke(cli, ["log", "monitor", "--commune", COMMUNE, "--json", "--key", key.output.strip()])
    assert monitor.exit_code == 0, monitor.output
    rows = json.loads(monitor.output)["entries"]
    assert any(r.get("document") == document for r in rows)
    assert any(r["type"] == "certificate-issued" and r.get("profile") == "specialist" for r in rows)
    assert all(r.get("commune") == COMMUNE for r in rows)
    exported = runner.invoke(cli, ["log", "export", str(tmp_path / "copy")])
    assert exported.exit_code == 0 and (tmp_path / "copy" / "checkpoint").is_file()
    other = runner.invoke(cli, ["log", "monitor", "--commune", "99999", "--dir", str(tmp_path / "copy"),
                                "--key", key.output.strip()])
    assert other.exit_code == 0 and "nothing logged for commune 99999" in other.output
    keyless = runner.invoke(cli, ["log", "verify", "--dir", str(tmp_path / "copy")], env={"KYSO_LOG_KEY": ""})
    assert keyless.exit_code != 0 and "--key" in keyless.output
    local = runner.invoke(cli, ["log", "monitor", "--commune", COMMUNE, "--json"])
    assert local.exit_code == 0 and json.loads(local.output)["entries"] == rows
    both = runner.invoke(cli, ["log", "verify", "--dir", str(tmp_path), "--url", "http://x"])
    assert both.exit_code != 0 and "exactly one" in both.output
    usage = runner.invoke(cli, ["log", "verify", "--help"], env={"COLUMNS": "200"}).output
    assert "--state" in usage and "fork" in usage and "--key" in usage


def test_the_log_is_made_once_with_the_hierarchy(pki: Container) -> None:
    from core import audit
    from pki.authorities import init_hierarchy
    from tests.helpers.db import ISSUING, ROOT

    again = init_hierarchy(pki.pki, root=ROOT, issuing=ISSUING, actor="test")
    assert again.log_key == service.log_info(pki.pki).vkey and again.log_problem is None
    with transaction(pki.sessions, read_only=True) as session:
        created = audit.entries(session, audit.AuditFilter(action="pki:log:create"))
    assert len(created) == 1 and created[0].subject == service.log_info(pki.pki).origin


def test_kyso_log_verify_reads_a_live_server(live_pki, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from tests.helpers.servers import LiveServer

    container, server = live_pki
    assert isinstance(server, LiveServer)
    service.sequence_all(container.pki)  # the server's own sequencer may have done it already: either way
    key = service.log_info(container.pki).vkey
    state = tmp_path / "state.json"
    runner = CliRunner()
    ok = runner.invoke(cli, ["log", "verify", "--url", f"{server.url}/log", "--key", key, "--state", str(state),
                             "--json"])
    assert ok.exit_code == 0, ok.output
    assert json.loads(ok.output)["size"] > 0 and state.is_file()
    wrong = runner.invoke(cli, ["log", "verify", "--url", f"{server.url}/nowhere", "--key", key, "--json"])
    assert wrong.exit_code == 1 and "missing checkpoint" in json.loads(wrong.output)["error"]
