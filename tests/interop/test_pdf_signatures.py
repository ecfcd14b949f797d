"""What kyso signs, judged by validators nobody here wrote: poppler's ``pdfsig`` (NSS), ``qpdf --check``
and pyHanko's own validator, on our sample and on the corpus of real PDFs from other producers.

Every test talks to a real ``kyso serve``: the certificates' AIA/OCSP URLs point to it, and pdfsig
asks that OCSP responder online (the server log proves it did), so revocation is checked by an
outside client too. One kyso (hierarchy, server, credentials) per module and database backend keeps
the file fast; each test uses its own document and, where it changes a status, its own credential.

pdfsig 22.12 cannot validate RFC 3161 document timestamps (the B-LTA archive timestamp): it prints
"Unimplemented Feature (0): Unable to validate this type of signature". For those, only their
presence is checked in pdfsig's output; pyHanko validates them (hard-fail, from the file's DSS).
"""
from __future__ import annotations

import itertools
import json
import secrets
from collections.abc import Iterator
from dataclasses import dataclass, field
from io import BytesIO
from pathlib import Path

import httpx
import pytest
from pyhanko.pdf_utils.reader import PdfFileReader

from api import tokens
from api.container import Container
from core.db import transaction
from core.errors import InvalidInput
from hsm import KeyType
from pki import revocation, store
from pki.authorities import init_hierarchy
from pki.reasons import Reason
from signing.create.service import AppearanceOptions, SignRequest, SignResult
from signing.errors import EncryptedPdf
from tests.helpers.api import new_token
from tests.helpers.db import ISSUING, ROOT, build_for_test, database_url, make_settings
from tests.helpers.servers import LiveServer, free_port
from tests.helpers.signing import COMMUNE, CONSENTED, CORPUS, SpecialistPhone, issue_credential, root_pem
from tests.interop.pdf_tools import (
    REVOKED,
    TRUSTED,
    VALID,
    PdfSig,
    assert_document_timestamps_ok,
    assert_pdfsig_valid_and_trusted,
    assert_pyhanko_ok,
    assert_qpdf_clean,
    build_shim,
    qpdf_check,
)

pytestmark = pytest.mark.interop

VISIBLE = AppearanceOptions()  # the document type's default stamp
INVISIBLE = AppearanceOptions(visible=False)
ENCRYPTED = "graph-encrypted.pdf"
DAMAGED = ("fuzz-378014596.pdf", "content-stream-errors.pdf", "cyclic-toc.pdf")
GOOD = sorted(p.name for p in CORPUS.glob("*.pdf") if p.name not in (ENCRYPTED, *DAMAGED))
_ids = itertools.count(2)


@dataclass
class LivePki:
    """A kyso with the test hierarchy, a live server its certificates point to, and a relying party's
    NSS database trusting its root."""

    container: Container
    server: LiveServer
    dir: Path
    root_pem: bytes
    pdfsig: PdfSig
    headers: dict[str, str]
    specialist: str
    seal: str
    phone: SpecialistPhone
    client_actor: str
    _by_key_type: dict[KeyType, str] = field(default_factory=dict)

    def credential(self, key_type: KeyType) -> str:
        if key_type not in self._by_key_type:
            self._by_key_type[key_type] = new_specialist(self.container, key_type=key_type)
        return self._by_key_type[key_type]

    def sign(self, pdf: bytes, credential: str | None = None, level: str = "B-LT",
             appearance: AppearanceOptions = INVISIBLE, document_type: str = "dossier-result",
             **extra: object) -> SignResult:
        request = SignRequest(pdf=pdf, document_type=document_type, commune_code=COMMUNE,
                              credential_id=credential or self.specialist, level=level,  # type: ignore[arg-type]
                              appearance=appearance, **extra)  # type: ignore[arg-type]
        return self.container.signing.sign(request, actor="test", activation=CONSENTED)

    def write(self, name: str, pdf: bytes) -> Path:
        path = self.dir / f"{secrets.token_hex(3)}-{name}"
        path.write_bytes(pdf)
        return path

    def ocsp_requests(self) -> int:
        """OCSP requests the server has answered so far (uvicorn's access log)."""
        log = self.server.log_path.read_text(errors="replace")
        return sum(1 for line in log.splitlines() if ' /ocsp' in line and ('"GET ' in line or '"POST ' in line))

    # -- over HTTP, as a client application -------------------------------------------------------
    def post_sign(self, pdf: bytes, filename: str, **metadata: object) -> httpx.Response:
        meta = {"document_type": "dossier-result", "commune_code": COMMUNE, "credential_id": self.specialist,
                "level": "B-LT", "sad": self.phone.authorize_for(self.client_actor, pdf), **metadata}
        return httpx.post(f"{self.server.url}/api/v1/sign", headers=self.headers, timeout=60,
                          files={"file": (filename, pdf, "application/pdf")}, data={"metadata": json.dumps(meta)})

    def documents(self, **query: str) -> int:
        response = httpx.get(f"{self.server.url}/api/v1/documents", headers=self.headers, timeout=30,
                             params={"limit": "1", **query})
        assert response.status_code == 200, response.text
        return int(response.json()["total"])


def new_specialist(container: Container, key_type: KeyType | None = None) -> str:
    n = next(_ids)
    return issue_credential(container, key_type=key_type, name=f"Nguyễn Văn Kiểm {n}", id_number=f"{1190000000 + n:012d}")


@pytest.fixture(scope="session")
def pdfsig_shim(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_shim(tmp_path_factory.mktemp("pdfsig-shim"))


def _database_url(request: pytest.FixtureRequest, home: Path):  # type: ignore[no-untyped-def]
    """As tests/helpers/db.py's ``db_url``, for a module."""
    return database_url(request, home, from_template=True)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def live(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
         pdfsig_shim: Path) -> Iterator[LivePki]:
    base = tmp_path_factory.mktemp(f"pdf-interop-{request.param}")
    home = base / "home"
    home.mkdir()
    with _database_url(request, home) as url:
        yield from _live(request, url, home, base, pdfsig_shim)


def _live(request: pytest.FixtureRequest, url: str, home: Path, base: Path, pdfsig_shim: Path) -> Iterator[LivePki]:
    port = free_port()
    settings = make_settings(home, url, base_url=f"http://127.0.0.1:{port}")
    container = build_for_test(request, settings)
    server = None
    try:
        init_hierarchy(container.pki, root=ROOT, issuing=ISSUING, actor="test")
        specialist = new_specialist(container)
        seal = issue_credential(container, "seal", name="Ủy ban nhân dân Phường Ba Đình")
        root = root_pem(container)
        server = LiveServer(settings, port)
        yield LivePki(container=container, server=server, dir=base, root_pem=root,
                      pdfsig=PdfSig(pdfsig_shim, base / "nss", root),
                      headers={"Authorization": f"Bearer {new_token(container, tokens.Role.client, 'hotich')}"},
                      specialist=specialist, seal=seal, phone=SpecialistPhone(container, specialist),
                      client_actor="token:hotich")
    finally:
        if server is not None:
            server.stop()
        container.engine.dispose()


def validate_everywhere(live: LivePki, name: str, pdf: bytes, *, level: str, signatures: int = 1,
                        later_signatures_ok: bool = False) -> None:
    """qpdf --check, pdfsig (every real signature valid and trusted) and pyHanko (intact, valid,
    trusted; hard-fail from the DSS for B-LT and B-LTA; timestamps valid from B-T)."""
    path = live.write(name, pdf)
    assert_qpdf_clean(path)
    lta = level == "B-LTA"
    assert_pdfsig_valid_and_trusted(live.pdfsig.check(path), signatures=signatures, timestamps=1 if lta else 0)
    assert_pyhanko_ok(pdf, live.root_pem, ltv=level in ("B-LT", "B-LTA"), signatures=signatures,
                      timestamped=level != "B-B", later_signatures_ok=later_signatures_ok)
    assert_document_timestamps_ok(pdf, live.root_pem, 1 if lta else 0)


# --- levels ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("level,appearance", [
    ("B-B", VISIBLE), ("B-T", INVISIBLE), ("B-LT", INVISIBLE), ("B-LTA", VISIBLE),
], ids=["B-B-visible", "B-T", "B-LT", "B-LTA-visible"])
def test_each_level_passes_pdfsig_qpdf_and_pyhanko(live: LivePki, level: str, appearance: AppearanceOptions) -> None:
    sample = (CORPUS / "fourpages.pdf").read_bytes()
    asked = live.ocsp_requests()
    result = live.sign(sample, level=level, appearance=appearance)
    assert result.level == level and not result.pending_upgrade
    assert result.pdf.startswith(sample), "signing appends an incremental update"
    validate_everywhere(live, f"{level}.pdf", result.pdf, level=level)
    assert live.ocsp_requests() > asked, "pdfsig should have asked kyso's OCSP responder about the signer"
    reader = PdfFileReader(BytesIO(result.pdf))
    assert ("/DSS" in reader.root) == (level in ("B-LT", "B-LTA"))


# --- algorithms -----------------------------------------------------------------------------------

@pytest.mark.parametrize("key_type,padding,mechanism,pdfsig_hash", [
    (KeyType.RSA_2048, None, "rsassa_pss", "SHA-256"),
    (KeyType.RSA_2048, "pkcs1v15", "sha256_rsa", "SHA-256"),
    (KeyType.EC_P384, None, "sha384_ecdsa", "SHA-384"),
], ids=["rsa-2048-pss", "rsa-2048-pkcs1v15", "ec-p384"])
def test_key_types_pass_pdfsig_and_pyhanko(live: LivePki, key_type: KeyType, padding: str | None, mechanism: str,
                                           pdfsig_hash: str) -> None:
    credential = live.credential(key_type)
    result = live.sign((CORPUS / "fourpages.pdf").read_bytes(), credential, "B-LT", rsa_padding=padding)
    path = live.write(f"{key_type.value}.pdf", result.pdf)
    report = live.pdfsig.check(path)
    [sig] = report.regular
    assert sig.fields.get("Signing Hash Algorithm") == pdfsig_hash, str(report)
    assert_pdfsig_valid_and_trusted(report, signatures=1)
    [verdict] = assert_pyhanko_ok(result.pdf, live.root_pem, ltv=True, signatures=1, timestamped=True)
    assert verdict.signature_mechanism in (mechanism, "rsassa_pkcs1v15" if padding else mechanism), verdict
    assert_qpdf_clean(path)


# --- revocation, seen by pdfsig through kyso's OCSP -----------------------------------------------------

def test_pdfsig_sees_the_signer_revoked_through_kyso_ocsp(live: LivePki) -> None:
    credential = new_specialist(live.container)
    result = live.sign((CORPUS / "fourpages.pdf").read_bytes(), credential, "B-T")
    path = live.write("to-revoke.pdf", result.pdf)
    before = live.pdfsig.check(path)
    assert_pdfsig_valid_and_trusted(before, signatures=1)

    with transaction(live.container.sessions) as session:
        serial = store.get_credential(session, credential).certificate.serial
    revocation.revoke(live.container.pki, serial, Reason.keyCompromise, "test")
    asked = live.ocsp_requests()
    after = live.pdfsig.check(path)
    [sig] = after.regular
    assert sig.signature == VALID, str(after)  # the bytes did not change; the certificate did
    assert sig.certificate != TRUSTED, str(after)
    assert sig.certificate == REVOKED, f"NSS said {list(after.nss_verdicts)}:\n{after}"
    assert any("SEC_ERROR_REVOKED_CERTIFICATE" in line for line in after.nss_verdicts), str(after)
    assert live.ocsp_requests() > asked, "pdfsig can only know about the revocation from kyso's OCSP responder"


# --- sequential signatures ------------------------------------------------------------------------------

def test_person_then_seal_both_valid_in_pdfsig_and_pyhanko(live: LivePki) -> None:
    sample = (CORPUS / "fourpages.pdf").read_bytes()
    first = live.sign(sample, live.specialist, "B-LT")
    second = live.sign(first.pdf, live.seal, "B-LT")
    assert second.document_id == first.document_id and second.version == 2
    assert second.pdf.startswith(first.pdf), "the seal is an incremental update over the person's signed bytes"
    validate_everywhere(live, "person-then-seal.pdf", second.pdf, level="B-LT", signatures=2,
                        later_signatures_ok=True)
    report = live.pdfsig.check(live.write("person-then-seal-2.pdf", second.pdf))
    names = [s.fields.get("Signer Certificate Common Name") for s in report.regular]
    assert names[1] == "Ủy ban nhân dân Phường Ba Đình" and names[0].startswith("Nguyễn Văn Kiểm"), str(report)


# --- the corpus ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", GOOD)
def test_corpus_pdf_signs_at_b_lt_visible_and_validates(live: LivePki, name: str) -> None:
    original = (CORPUS / name).read_bytes()
    result = live.sign(original, level="B-LT", appearance=VISIBLE)
    assert result.level == "B-LT" and result.pdf.startswith(original)
    validate_everywhere(live, name, result.pdf, level="B-LT")


def test_encrypted_pdf_is_refused_in_process_and_over_http(live: LivePki) -> None:
    encrypted = (CORPUS / ENCRYPTED).read_bytes()
    before = live.documents()
    with pytest.raises(EncryptedPdf):
        live.sign(encrypted, appearance=VISIBLE)
    response = live.post_sign(encrypted, ENCRYPTED, dossier_number="HS-ENCRYPTED-1")
    assert response.status_code == 422, response.text
    assert response.json()["error"]["code"] == "encrypted_pdf", response.text
    assert live.documents(dossier_number="HS-ENCRYPTED-1") == 0
    assert live.documents() == before, "nothing is registered for a refused file"


@pytest.mark.parametrize("name", DAMAGED)
def test_damaged_pdf_signs_cleanly_or_is_refused_as_invalid_input(live: LivePki, name: str,
                                                                   record_property) -> None:  # type: ignore[no-untyped-def]
    damaged = (CORPUS / name).read_bytes()
    before = live.documents()
    try:
        result = live.sign(damaged, appearance=VISIBLE)
    except InvalidInput as exc:
        outcome: str = f"refused: {exc.code}"
        refused: InvalidInput | None = exc
    else:
        outcome, refused = f"signed at {result.level}", None
    record_property("outcome", outcome)
    print(f"{name}: {outcome}")

    if refused is None:
        path = live.write(name, result.pdf)
        before_check, after_check = qpdf_check(live.write(f"input-{name}", damaged)), qpdf_check(path)
        severity = {0: 0, 3: 1, 2: 2}  # qpdf exit codes: 0 clean, 3 warnings, 2 errors
        assert severity.get(after_check.returncode, 3) <= severity.get(before_check.returncode, 3), (
            f"signing made qpdf's verdict worse:\n{before_check}\n{after_check}")
        assert_pdfsig_valid_and_trusted(live.pdfsig.check(path), signatures=1)
        assert_pyhanko_ok(result.pdf, live.root_pem, ltv=True, signatures=1, timestamped=True)

    response = live.post_sign(damaged, name, dossier_number=f"HS-{name}")
    assert response.status_code != 500 and response.status_code < 500, response.text
    if refused is not None:
        assert response.status_code == 422, response.text
        assert response.json()["error"]["code"] == refused.code, response.text
        assert live.documents() == before, "nothing is registered for a refused file"
    else:
        assert response.status_code == 200, response.text
        assert response.headers["content-type"] == "application/pdf"
        assert_pyhanko_ok(response.content, live.root_pem, ltv=True, signatures=1, timestamped=True)
