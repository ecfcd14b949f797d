"""The integrator guide's worked examples (docs/examples/: Java with java.net.http, PHP with curl) run
against a real `kyso serve`: submit a signing request, the specialist approves it, the program polls and
fetches the signed PDF, which kyso's verifier calls genuine. Commune software is written in these languages;
an example that does not run is worse than none."""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from api import tokens
from api.container import Container
from api.routes import sign_requests
from tests.helpers.activation import PIN
from tests.helpers.api import new_token
from tests.helpers.servers import LiveServer
from tests.helpers.signing import CORPUS, SpecialistPhone, issue_credential

EXAMPLES = Path(__file__).resolve().parents[2] / "docs" / "examples"
IN_CI = os.environ.get("CI") == "true"


def command(language: str, tmp_path: Path) -> list[str]:
    tool = {"java": "java", "php": "php"}[language]
    if shutil.which(tool) is None:
        if IN_CI:
            pytest.fail(f"{tool} is needed to run the {language} example (scripts/install-system-deps.sh)")
        pytest.skip(f"no {tool} on this machine")
    if language == "java":  # compiled first, so a compile error reads as one
        out = tmp_path / "classes"
        subprocess.run(["javac", "-d", str(out), str(EXAMPLES / "SignRequest.java")], check=True, timeout=120)
        return ["java", "-cp", str(out), "SignRequest"]
    return ["php", str(EXAMPLES / "sign_request.php")]


@pytest.mark.parametrize("language", ["java", "php"])
def test_the_example_signs_through_a_specialist_s_approval(live_pki: tuple[Container, LiveServer], tmp_path: Path,
                                                          language: str) -> None:
    container, server = live_pki
    credential = issue_credential(container)
    phone = SpecialistPhone(container, credential)
    token = new_token(container, tokens.Role.client, "commune-software")
    signed = tmp_path / "signed.pdf"
    program = subprocess.Popen(
        [*command(language, tmp_path), credential, str(CORPUS / "fourpages.pdf"), str(signed)],
        env={**os.environ, "KYSO_URL": server.url, "KYSO_TOKEN": token}, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True)
    try:
        assert program.stdout is not None
        first = program.stdout.readline()
        if not first.startswith("request "):
            out, err = program.communicate(timeout=30)
            pytest.fail(f"the {language} example did not submit: {first}{out}{err}")
        request_id = first.split()[1].rstrip(":")
        assert f"{server.url}/me" in first
        with phone.fresh_code() as code:  # what /me does when she approves with her PIN and a fresh code
            approved = sign_requests.approve(container, request_id, credential, PIN, code)
        assert approved.status == "signed"
        out, err = program.communicate(timeout=120)
    finally:
        if program.poll() is None:
            program.kill()
    assert program.returncode == 0, (out, err)
    assert "status signed" in out and f"verify at {server.url}/v/" in out
    report = container.verifier.verify(signed.read_bytes())
    assert report.genuine and report.registry is not None, report.summary
    assert report.registry.document_id == approved.items[0].document_id
    assert [s.level for s in report.signatures] == ["B-LT"]
