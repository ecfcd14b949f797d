"""Pre-produced OCSP responses as static files (issue 19 item 4; RFC 5019 section 6): `kyso ocsp export DIR`
writes each one under the Base64 of the GET request openssl itself builds for that certificate, and the
file is a response openssl verifies against the root, good or revoked, with no kyso running."""
from __future__ import annotations

import base64
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest

from api.container import Container
from core.db import transaction
from pki import ocsp, revocation
from pki.reasons import Reason
from tests.helpers.runtime import ROOT
from tests.helpers.servers import free_port
from tests.interop.helpers import RelyingParty

pytestmark = pytest.mark.interop


def _exported(rp: RelyingParty, exported: Path, leaf_pem: Path, request_name: str) -> Path:
    """The exported file a web server would send for openssl's own GET request for ``leaf_pem``."""
    made = rp.openssl("ocsp", "-issuer", rp.issuing_pem.name, "-cert", leaf_pem.name, "-no_nonce",
                      "-reqout", request_name)
    assert made.returncode == 0, str(made)
    path = base64.b64encode((rp.dir / request_name).read_bytes()).decode()
    return exported.joinpath(*path.split("/"))


def test_exported_responses_are_named_by_the_get_request_and_verify_with_openssl(pki: Container,
                                                                                  tmp_path: Path) -> None:
    rp = RelyingParty(pki, "http://127.0.0.1:9", tmp_path / "rp")
    good, bad = rp.issue("good"), rp.issue("bad")
    revocation.revoke(pki.pki, bad.serial, Reason.keyCompromise, "test")
    exported = tmp_path / "www" / "ocsp"
    with transaction(pki.sessions, read_only=True) as session:
        count = ocsp.export(pki.pki, session, exported)
    assert count >= 2  # the two leaves, and the responder and seal certificates the hierarchy holds
    for leaf, status in ((good, "good"), (bad, "revoked")):
        response = _exported(rp, exported, leaf.pem, f"{leaf.pem.stem}.req")
        assert response.is_file(), sorted(str(p.relative_to(exported)) for p in exported.rglob("*"))
        checked = rp.openssl("ocsp", "-respin", str(response), "-issuer", rp.issuing_pem.name, "-cert", leaf.pem.name,
                             "-CAfile", rp.root_pem.name, "-verify_other", rp.issuing_pem.name, "-no_nonce")
        assert checked.returncode == 0, str(checked)
        assert "Response verify OK" in checked.output and f"{leaf.pem.name}: {status}" in checked.output, str(checked)
    assert not list(exported.rglob(".*.partial"))
    # a plain static web server answers the GET request openssl would send, percent-encoded (RFC 5019 A.1)
    request_b64 = base64.b64encode((rp.dir / "good.req").read_bytes()).decode()
    port = free_port()
    web = subprocess.Popen([sys.executable, "-m", "http.server", "--bind", "127.0.0.1", str(port), "--directory",
                            str(tmp_path / "www")], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline, answer = time.monotonic() + 20, None
        while answer is None and time.monotonic() < deadline:
            try:
                answer = httpx.get(f"http://127.0.0.1:{port}/ocsp/{quote(request_b64, safe='')}", timeout=5)
            except httpx.TransportError:
                time.sleep(0.1)
        assert answer is not None and answer.status_code == 200
        assert answer.content == _exported(rp, exported, good.pem, "good-again.req").read_bytes()
    finally:
        web.terminate()
        web.wait(10)


def test_kyso_ocsp_export_writes_the_folder(pki: Container, tmp_path: Path) -> None:
    env = {"KYSO_HOME": str(pki.settings.home), "KYSO_DATABASE_URL": pki.settings.resolved_database_url,
           "KYSO_SOFT_MASTER_KEY": pki.settings.soft_master_key.get_secret_value() if pki.settings.soft_master_key
           else "", "PATH": "/usr/bin:/bin"}
    r = subprocess.run([sys.executable, "-m", "api.cli", "ocsp", "export", str(tmp_path / "out")], cwd=ROOT, env=env,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr + r.stdout
    files = [p for p in (tmp_path / "out").rglob("*") if p.is_file()]
    assert files and f"wrote {len(files)} OCSP responses" in r.stdout
