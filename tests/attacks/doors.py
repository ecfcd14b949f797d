"""The three doors a forged file is carried through, and what each must answer.

A relying party meets kyso's verdict at ``POST /api/v1/verify`` (systems), ``kyso verify`` (an
operator; exit status 0 only for a genuine file) and the citizen page's upload form
(``POST /v/{document_id}``; green ``box ok`` with "HỢP LỆ" only for the genuine current version).
A forgery must be "not genuine" at each, or refused with a clear 4xx; a 500 is never an answer.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from fastapi.testclient import TestClient
from typer.testing import CliRunner

from api import cli
from api.container import Container
from core.errors import KysoError
from signing.verify.report import VerificationReport

# what the citizen page says only of a file it believes: the green box, its headline, "unaltered"
GREEN_KEYS = {"genuine", "earlier_version"}
CONTENT_UNALTERED = ("không bị sửa đổi", "không bị thay đổi", "nội dung không thay đổi", "unaltered",
                     "was not changed")


@dataclass(frozen=True)
class ApiAnswer:
    status: int
    genuine: bool | None  # None when the answer is a refusal
    body: dict


@dataclass(frozen=True)
class CliAnswer:
    exit_code: int
    output: str
    crashed: BaseException | None  # an exception that is not a kyso error: a crash, not an answer


@dataclass(frozen=True)
class CitizenAnswer:
    status: int
    key: str | None  # data-result of the result box: genuine, earlier_version, not_genuine, unregistered, ...
    tone: str | None  # ok, warn, bad
    html: str

    @property
    def result_text(self) -> str:
        match = re.search(r'<section id="result".*?</section>', self.html, re.S)
        return match.group(0) if match else ""


def verify(pki: Container, pdf: bytes) -> VerificationReport | KysoError:
    """The verifier's report, or the kyso error it refused the file with (anything else propagates)."""
    try:
        return pki.verifier.verify(pdf)
    except KysoError as exc:
        return exc


def api(client: TestClient, pdf: bytes) -> ApiAnswer:
    r = client.post("/api/v1/verify", files={"file": ("forged.pdf", pdf, "application/pdf")})
    body = r.json() if r.headers.get("content-type", "").startswith("application/json") else {}
    return ApiAnswer(r.status_code, body.get("genuine") if r.status_code == 200 else None, body)


def kyso_verify(pki: Container, pdf: bytes, directory: Path) -> CliAnswer:
    """``kyso verify FILE`` in process (typer's runner) against the test's own data folder and database;
    a kyso error ends the real CLI with exit status 2 (``api.cli.main``), so it does here."""
    path = directory / "to-verify.pdf"
    path.write_bytes(pdf)
    settings = pki.settings
    env = {"KYSO_HOME": str(settings.home), "KYSO_DATABASE_URL": settings.resolved_database_url,
           "KYSO_SOFT_MASTER_KEY": settings.soft_master_key.get_secret_value() if settings.soft_master_key else "",
           "COLUMNS": "200"}
    result = CliRunner().invoke(cli.app, ["verify", str(path), "--lang", "en"], env=env)
    exc = result.exception
    if isinstance(exc, KysoError):
        return CliAnswer(2, result.output + f"\nerror ({exc.code}): {exc.message}", None)
    crashed = exc if exc is not None and not isinstance(exc, SystemExit) else None
    return CliAnswer(result.exit_code, result.output, crashed)


def citizen(client: TestClient, document_id: str, pdf: bytes) -> CitizenAnswer:
    r = client.post(f"/v/{document_id}", files={"file": ("forged.pdf", pdf, "application/pdf")})
    box = re.search(r'<section id="result" class="box (\w+)" data-result="([\w-]+)"', r.text)
    return CitizenAnswer(r.status_code, box.group(2) if box else None, box.group(1) if box else None, r.text)


# -- what each door must say -------------------------------------------------------------------------
def describe(report: VerificationReport | KysoError) -> str:
    """One line for a test's failure message: the verdict the file got."""
    if isinstance(report, KysoError):
        return f"refused: {type(report).__name__} ({report.code}) {report.message}"
    mods = ", ".join(f"{m.category}@p{m.page}" for m in report.modifications) or "none"
    return (f"genuine={report.genuine} {report.indication}/{report.sub_indication} modifications=[{mods}] "
            f"visual={len(report.visual_differences)} signatures="
            + ", ".join(f"{'TS' if s.kind == 'document_timestamp' else s.field_name}:{s.indication}:"
                        f"{s.coverage.modification_level}" for s in report.signatures))


def _api_problem(answer: ApiAnswer) -> str | None:
    if answer.status >= 500:
        return f"POST /api/v1/verify answered {answer.status}: {answer.body}"
    if answer.status == 200:
        return None if answer.genuine is False else (
            f"POST /api/v1/verify called it genuine: {answer.body.get('indication')} {answer.body.get('summary', {}).get('en')}")
    if not answer.body.get("error", {}).get("code"):
        return f"POST /api/v1/verify refused it ({answer.status}) without saying why: {answer.body}"
    return None


def _cli_problem(run: CliAnswer) -> str | None:
    if run.crashed is not None:
        return f"kyso verify crashed: {run.crashed!r}"
    if run.exit_code == 0:
        return "kyso verify exited 0 (genuine): " + " ".join(run.output.split())[:200]
    return None


def _citizen_problem(page: CitizenAnswer) -> str | None:
    if page.status >= 500:
        return f"the citizen page answered {page.status}"
    if page.status == 200 and (page.key in GREEN_KEYS or page.tone != "bad"):
        return f"the citizen page showed {page.key!r} ({page.tone})"
    text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", page.result_text))
    for words in CONTENT_UNALTERED:
        if words in text:
            at = text.index(words)
            return f"the citizen page says the content is unaltered: …{text[max(0, at - 80):at + 40]}…"
    return None


def assert_refused_everywhere(pki: Container, client: TestClient, pdf: bytes, document_id: str,
                              directory: Path) -> None:
    """Not genuine (or a clear refusal) through the API, the CLI and the citizen page; never a 500.
    All three are asked before judging, so a failure names every door that was fooled."""
    problems = [p for p in (_api_problem(api(client, pdf)), _cli_problem(kyso_verify(pki, pdf, directory)),
                            _citizen_problem(citizen(client, document_id, pdf))) if p]
    assert not problems, "; ".join(problems)


def assert_genuine_everywhere(pki: Container, client: TestClient, pdf: bytes, document_id: str,
                              directory: Path) -> None:
    """Genuine through the verifier, the API, the CLI and the citizen page (green, current version)."""
    report = verify(pki, pdf)
    assert not isinstance(report, KysoError) and report.genuine, describe(report)
    answer = api(client, pdf)
    assert answer.status == 200 and answer.genuine is True, f"{answer.status}: {answer.body.get('summary')}"
    run = kyso_verify(pki, pdf, directory)
    assert run.crashed is None and run.exit_code == 0, f"kyso verify exited {run.exit_code}:\n{run.output}"
    page = citizen(client, document_id, pdf)
    assert page.status == 200 and (page.key, page.tone) == ("genuine", "ok"), (
        f"the citizen page showed {page.key!r} ({page.tone}): {page.result_text[:400]}")
