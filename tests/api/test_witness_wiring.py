"""The log and its witnesses wired together: a sequencer pass hands the checkpoint to the witnesses, and
/log/checkpoint serves it with the witness's cosignature (B, another kyso, witnessing A's real log)."""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.container import Container
from api.scheduler import sequence_once
from pki.authorities import init_hierarchy
from pki.transparency import service, witness
from pki.transparency.cosignature import CosignerVerifier, verify_cosignatures
from pki.transparency.note import open_checkpoint
from pki.transparency.witness_client import WitnessEndpoint, WitnessPool
from tests.helpers.db import ISSUING, ROOT, build_for_test, make_settings


@pytest.fixture
def instance_a(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Container]:
    a = build_for_test(request, make_settings(tmp_path / "a" / "home", f"sqlite:///{tmp_path / 'a' / 'kyso.db'}",
                                              base_url="https://kyso.hanoi.example"))
    yield a
    a.engine.dispose()


def test_a_sequenced_checkpoint_is_served_cosigned(instance_a: Container, container: Container, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    b_row = witness.ensure_key(container.sessions, container.pki.keystores, "kyso.hue.example/witness", actor="b")
    b_key = CosignerVerifier(b_row.name, b_row.public_key)
    init_hierarchy(instance_a.pki, root=ROOT, issuing=ISSUING, actor="a")  # makes A's log, queues its CAs
    log_vkey = service.log_info(instance_a.pki).vkey
    witness.add_log(container.sessions, log_vkey, actor="b")
    with TestClient(create_app(container, scheduler=False), raise_server_exceptions=False) as b_client:
        instance_a.witnesses = WitnessPool(  # KYSO_LOG_WITNESSES, with B's app as the network
            instance_a.sessions, [WitnessEndpoint.parse(f"http://testserver/witness {b_key.vkey}")], client=b_client,
            timeout=60)  # in-process B under a loaded CI machine once missed the 5 s production default
        assert sequence_once(instance_a) > 0
        instance_a.witnesses.close()  # waits for the background round
        with TestClient(create_app(instance_a, scheduler=False)) as a_client:
            served = a_client.get("/log/checkpoint").text
    cp, _ = open_checkpoint(served, service.verifier(instance_a.pki))
    assert cp.size > 0
    assert [c.witness for c in verify_cosignatures(served, [b_key], 1)] == [b_key.name]

    # a copy exported and checked offline with a K-of-N policy
    from typer.testing import CliRunner

    from api import cli
    from api.cli import common

    monkeypatch.setattr(common, "container", lambda: instance_a)
    runner = CliRunner()
    assert runner.invoke(cli.app, ["log", "export", str(tmp_path / "copy")]).exit_code == 0
    other = CosignerVerifier("nobody.example/witness", bytes(32)).vkey
    ok = runner.invoke(cli.app, ["log", "verify", "--dir", str(tmp_path / "copy"), "--key", log_vkey,
                                 "--witness", b_key.vkey, "--witness", other, "--quorum", "1"])
    assert ok.exit_code == 0 and b_key.name in ok.output, ok.output
    missing = runner.invoke(cli.app, ["log", "verify", "--dir", str(tmp_path / "copy"), "--key", log_vkey,
                                      "--witness", b_key.vkey, "--witness", other])  # default quorum: all
    assert missing.exit_code == 1 and "policy asks for 2" in missing.output, missing.output
