"""OpenSSL as an RFC 3161 client of kyso's TSA: ``openssl ts -query`` builds the request, the
``/tsa`` route answers it, ``openssl ts -reply`` parses the answer and ``openssl ts -verify``
checks the token against our root (by data and by query file). pkilint lints the TSA certificate."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.container import Container
from core.db import transaction
from hsm import KeyType
from pki import store
from pki.names import SubjectInfo
from signing.create.timestamping import TimeStampResp
from tests.interop.helpers import (
    ISSUING_CA,
    ROOT_CA,
    Run,
    assert_lint_clean,
    ca_cert_der,
    issue,
    openssl,
    pkilint,
    write_cert_pem,
)

pytestmark = pytest.mark.interop
QUERY = {"Content-Type": "application/timestamp-query"}


class TsaClient:
    """A relying party's folder: the document, the trust anchor, the issuing CA; openssl runs there."""

    def __init__(self, client: TestClient, container: Container, directory: Path) -> None:
        self.client, self.container, self.dir = client, container, directory
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "document.pdf").write_bytes("%PDF-1.7 Giấy khai sinh — bản sao\n".encode() * 50)
        write_cert_pem(directory / "root.pem", ca_cert_der(container, ROOT_CA))
        write_cert_pem(directory / "chain.pem", ca_cert_der(container, ISSUING_CA))

    def openssl(self, *args: str) -> Run:
        return openssl(*args, cwd=self.dir)

    def query(self, name: str, *options: str) -> Path:
        result = self.openssl("ts", "-query", "-data", "document.pdf", "-cert", *options, "-out", f"{name}.tsq")
        assert result.returncode == 0, str(result)
        return self.dir / f"{name}.tsq"

    def post(self, query: Path) -> Path:
        response = self.client.post("/tsa", content=query.read_bytes(), headers=QUERY)
        assert response.status_code == 200, response.text
        assert response.headers["content-type"] == "application/timestamp-reply"
        reply = query.with_suffix(".tsr")
        reply.write_bytes(response.content)
        return reply

    def reply_text(self, reply: Path) -> str:
        result = self.openssl("ts", "-reply", "-in", reply.name, "-text")
        assert result.returncode == 0, str(result)
        return result.stdout

    def verify(self, reply: Path, *source: str) -> Run:
        return self.openssl("ts", "-verify", *source, "-in", reply.name, "-CAfile", "root.pem", "-untrusted", "chain.pem")


@pytest.fixture
def tsa(client: TestClient, pki: Container, tmp_path: Path) -> TsaClient:
    return TsaClient(client, pki, tmp_path / "relying-party")


def _field(text: str, name: str) -> str:
    match = re.search(rf"^{re.escape(name)}: *(.*)$", text, re.MULTILINE)
    assert match, f"no {name!r} in:\n{text}"
    return match.group(1).strip()


def test_openssl_verifies_a_token_by_data_and_by_query(tsa: TsaClient) -> None:
    query = tsa.query("request", "-sha256")
    reply = tsa.post(query)

    text = tsa.reply_text(reply)
    assert _field(text, "Status") == "Granted.", text
    assert _field(text, "Policy OID") == tsa.container.settings.tsa_policy_oid, text
    assert _field(text, "Hash Algorithm") == "sha256", text
    assert _field(text, "Ordering") == "no", text
    assert _field(text, "Accuracy").startswith("0x01 seconds"), text
    assert "CN=TSA kyso Test Issuing CA" in _field(text, "TSA"), text
    query_text = tsa.openssl("ts", "-query", "-in", query.name, "-text").stdout
    assert _field(text, "Nonce") == _field(query_text, "Nonce"), (text, query_text)

    by_data = tsa.verify(reply, "-data", "document.pdf")
    assert by_data.returncode == 0 and "Verification: OK" in by_data.stdout, str(by_data)
    by_query = tsa.verify(reply, "-queryfile", query.name)
    assert by_query.returncode == 0 and "Verification: OK" in by_query.stdout, str(by_query)


@pytest.mark.parametrize("options", [("-sha384",), ("-sha512", "-no_nonce")], ids=" ".join)
def test_other_digests_and_no_nonce_verify(tsa: TsaClient, options: tuple[str, ...]) -> None:
    reply = tsa.post(tsa.query("request", *options, "-tspolicy", tsa.container.settings.tsa_policy_oid))
    result = tsa.verify(reply, "-data", "document.pdf")
    assert result.returncode == 0 and "Verification: OK" in result.stdout, str(result)


def test_openssl_rejects_a_token_for_other_data(tsa: TsaClient) -> None:
    reply = tsa.post(tsa.query("request", "-sha256"))
    (tsa.dir / "other.pdf").write_bytes(b"%PDF-1.7 not the same document\n")
    result = tsa.verify(reply, "-data", "other.pdf")
    assert result.returncode != 0 and "Verification: OK" not in result.stdout, str(result)
    assert "message imprint mismatch" in result.output, str(result)


@pytest.mark.parametrize("digest", ["md5", "sha1"])
def test_openssl_reads_a_bad_alg_rejection(tsa: TsaClient, digest: str) -> None:
    """SHA-1 and MD5 imprints are refused (issue 15, item 7): a rejection with failInfo badAlg, no token."""
    reply = tsa.post(tsa.query(digest, f"-{digest}"))
    text = tsa.reply_text(reply)
    assert _field(text, "Status") == "Rejected.", text
    assert _field(text, "Failure info").lower() == "unrecognized or unsupported algorithm identifier", text
    assert digest in _field(text, "Status description"), text
    assert "TST info:\nNot included." in text, text
    answer = TimeStampResp.load(reply.read_bytes())  # asn1crypto agrees: rejection, badAlg, no token
    assert answer["status"]["status"].native == "rejection"
    assert answer["status"]["fail_info"].native == {"bad_alg"}
    assert not answer["time_stamp_token"]


@pytest.mark.parametrize("key_type", [KeyType.EC_P384, KeyType.RSA_2048], ids=lambda k: k.value)
def test_tsa_keys_of_every_type_verify(tsa: TsaClient, key_type: KeyType) -> None:
    """ECDSA with SHA-384 for a P-384 key, RSA PKCS#1 v1.5 with SHA-256 for RSA: openssl accepts both."""
    issue(tsa.container, "tsa", SubjectInfo(common_name=f"kyso TSA {key_type.value}", organization="kyso thử nghiệm"),
          None, key_type=key_type)
    tsa.container.signing.tsa.refresh()
    reply = tsa.post(tsa.query("request", "-sha256"))
    assert f"CN=kyso TSA {key_type.value}" in _field(tsa.reply_text(reply), "TSA")
    result = tsa.verify(reply, "-data", "document.pdf")
    assert result.returncode == 0 and "Verification: OK" in result.stdout, str(result)


def test_tsa_certificate_is_pkilint_clean(tsa: TsaClient) -> None:
    with transaction(tsa.container.sessions) as session:
        der = store.current_tsa(session).der
    tsa_pem = write_cert_pem(tsa.dir / "tsa.pem", der)
    assert_lint_clean(pkilint("lint_pkix_cert", "lint", "-s", "ERROR", "--document-format", "PEM", tsa_pem))
    assert_lint_clean(pkilint("lint_pkix_signer_signee_cert_chain", "lint", "-s", "ERROR", "--document-format", "PEM",
                              tsa.dir / "chain.pem", tsa_pem))
