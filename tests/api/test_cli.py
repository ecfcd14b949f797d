"""The operator CLI, run as a real subprocess the way an operator runs it."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from tests.helpers.db import make_settings


@pytest.fixture
def kyso(tmp_path: Path, db_url: str):
    settings = make_settings(tmp_path / "home", db_url)
    env = {**os.environ, "KYSO_HOME": str(settings.home), "KYSO_DATABASE_URL": db_url,
           "KYSO_SOFT_MASTER_KEY": settings.soft_master_key.get_secret_value(), "COLUMNS": "200"}

    def run(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run([sys.executable, "-m", "api.cli", *args], env=env, capture_output=True, text=True, timeout=120)
        if check and proc.returncode != 0:
            raise AssertionError(f"kyso {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
        return proc

    run.db_url = db_url  # type: ignore[attr-defined]
    return run


def test_help_teaches(kyso):
    top = kyso("--help").stdout
    for command in ("ca", "cert", "token", "units", "audit", "merge", "demo", "serve"):
        assert command in top
    assert "--dry-run" in kyso("merge", "--help").stdout
    assert "officer_moved" in kyso("cert", "revoke", "--help").stdout


def test_operator_flow_and_tamper_detection(kyso):
    first = json.loads(kyso("ca", "init", "--org", "Sở KH&CN thử nghiệm", "--json").stdout)
    assert sorted(first["created"]) == ["kyso-issuing", "kyso-root"]
    again = json.loads(kyso("ca", "init", "--org", "Sở KH&CN thử nghiệm", "--json").stdout)
    assert again["created"] == [] and sorted(again["existing"]) == ["kyso-issuing", "kyso-root"]
    clash = kyso("ca", "init", "--org", "Another org", check=False)
    assert clash.returncode == 2 and "never overwrites" in clash.stderr

    token = kyso("token", "create", "--name", "hotich-ba-dinh", "--role", "client").stdout
    assert token.startswith("kyso_") and token.count("\n") == 1  # the token alone on stdout

    issued = json.loads(kyso("cert", "issue", "--cn", "Nguyễn Thị Hoa", "--commune", "00004",
                             "--id-number", "001190000001", "--json").stdout)
    assert issued["credential_id"].startswith("cred_")
    listing = json.loads(kyso("cert", "list", "--commune", "00004", "--json").stdout)
    assert listing["total"] == 1 and "Nguyễn Thị Hoa" in listing["items"][0]["subject"]
    assert listing["items"][0]["credential_id"] == issued["credential_id"]  # the operator finds it again
    assert issued["credential_id"] in kyso("cert", "list", "--commune", "00004").stdout
    shown = kyso("cert", "show", issued["serial"]).stdout
    assert f"credential_id      {issued['credential_id']}" in shown
    assert json.loads(kyso("cert", "show", issued["serial"], "--json").stdout)["credential_id"] == issued["credential_id"]
    pem = kyso("cert", "export", issued["serial"]).stdout
    assert pem.startswith("-----BEGIN CERTIFICATE-----")
    revoked = json.loads(kyso("cert", "revoke", issued["serial"], "--ground", "officer_moved", "--json").stdout)
    assert revoked["reason"] == "affiliationChanged"
    unknown = kyso("cert", "show", "DEADBEEF", check=False)
    assert unknown.returncode == 2 and "no certificate" in unknown.stderr

    merge = json.loads(kyso("merge", "--from", "00004", "--into", "00025", "--dry-run", "--json").stdout)
    assert merge["dry_run"] is True and merge["changes"] == []  # the only certificate there is revoked

    assert "intact" in kyso("audit", "verify").stdout
    engine = create_engine(kyso.db_url)
    with engine.begin() as conn:
        conn.execute(text("UPDATE audit_log SET actor = 'someone-else' WHERE seq = 3"))
    engine.dispose()
    broken = kyso("audit", "verify", check=False)
    assert broken.returncode == 1 and "entry 3" in broken.stderr
    report = json.loads(kyso("audit", "verify", "--json", check=False).stdout)
    assert report["ok"] is False and report["first_broken_seq"] == 3


def test_cert_list_prints_whole_serials_and_show_takes_a_unique_prefix(kyso):
    kyso("ca", "init", "--org", "Sở KH&CN thử nghiệm")
    first = json.loads(kyso("cert", "issue", "--cn", "Nguyễn Thị Hoa", "--title", "Công chức Tư pháp - Hộ tịch",
                            "--commune", "00004", "--id-number", "001190000001", "--json").stdout)
    second = json.loads(kyso("cert", "issue", "--cn", "Trần Văn Bình", "--commune", "00004",
                             "--id-number", "001190000002", "--json").stdout)
    table = kyso("cert", "list", "--commune", "00004").stdout
    assert first["serial"] in table and second["serial"] in table  # whole, ready to copy
    assert "…" not in table
    # the subject follows the serial's line, whole, wrapped only between attributes
    assert "Nguyễn Thị Hoa" in table and "title=Công chức Tư pháp - Hộ tịch" in table and "commune 00004" in table
    wide = kyso("cert", "list", "--commune", "00004", "--wide").stdout
    [line] = [ln for ln in wide.splitlines() if first["serial"] in ln]
    assert "Nguyễn Thị Hoa" in line and "Ủy ban nhân dân" in line  # one line, nothing wrapped

    assert "2.5.4.12" not in table and "serialNumber=IDCVN-001190000001" in table  # names, not numbers

    # a unique beginning is enough for show and export (every certificate counts: CAs, OCSP, TSA too)
    others = sorted(item["serial"] for item in json.loads(kyso("cert", "list", "--limit", "1000", "--json").stdout)["items"]
                    if item["serial"] != first["serial"])
    def shared(a: str, b: str) -> str:
        return a[:next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))]

    common = max((shared(first["serial"], other) for other in others), key=len)
    prefix = first["serial"][:len(common) + 1]
    shown = json.loads(kyso("cert", "show", prefix.lower(), "--json").stdout)
    assert shown["serial"] == first["serial"]
    assert kyso("cert", "export", prefix).stdout.startswith("-----BEGIN CERTIFICATE-----")
    # an ambiguous beginning names the candidates, with their subjects
    if common:
        ambiguous = kyso("cert", "show", common, check=False)
        assert ambiguous.returncode == 2 and "(ambiguous_serial)" in ambiguous.stderr
        assert first["serial"] in ambiguous.stderr and "Nguyễn Thị Hoa" in ambiguous.stderr
    # a serial with one digit wrong: "did you mean" the real one
    typo = first["serial"][:-1] + ("0" if first["serial"][-1] != "0" else "1")
    missing = kyso("cert", "show", typo, check=False)
    assert missing.returncode == 2 and "no certificate with serial" in missing.stderr
    assert "did you mean" in missing.stderr.lower() and first["serial"] in missing.stderr
    # revoking takes the whole serial: a prefix is refused, with the serial it may mean
    refused = kyso("cert", "revoke", prefix, "--ground", "officer_moved", check=False)
    assert refused.returncode == 2 and "whole serial" in refused.stderr and first["serial"] in refused.stderr
    assert json.loads(kyso("cert", "show", first["serial"], "--json").stdout)["status"] == "valid"
    # JSON output is UTF-8 as written, never \u escapes
    listing = kyso("cert", "list", "--json").stdout
    assert "Nguyễn Thị Hoa" in listing and "\\u" not in listing


def test_audit_list_show_export_and_offline_verify(kyso, tmp_path):
    kyso("ca", "init", "--org", "Sở KH&CN thử nghiệm")
    issued = json.loads(kyso("cert", "issue", "--cn", "Nguyễn Thị Hoa", "--commune", "00004",
                             "--id-number", "001190000001", "--json").stdout)
    listing = json.loads(kyso("audit", "list", "--json").stdout)
    assert [e["seq"] for e in listing] == list(range(1, len(listing) + 1)) and len(listing) >= 3
    issue = [e for e in listing if e["subject"] == issued["serial"]]
    assert issue and issue[0]["actor"].startswith("cli:") and issue[0]["action"].startswith("pki:")
    table = kyso("audit", "list", "--action", "pki:ca:*").stdout
    assert "pki:ca:create" in table and issue[0]["action"] not in table
    assert json.loads(kyso("audit", "list", "--since", "2999-01-01", "--json").stdout) == []
    page = json.loads(kyso("audit", "list", "--limit", "1", "--after", "1", "--json").stdout)
    assert [e["seq"] for e in page] == [2]
    shown = kyso("audit", "show", str(issue[0]["seq"])).stdout
    assert issue[0]["hash"] in shown and issue[0]["action"] in shown and issued["serial"] in shown
    assert kyso("audit", "show", "999999", check=False).returncode == 1

    export = tmp_path / "audit.jsonl"
    kyso("audit", "export", "-o", str(export))
    lines = export.read_text("utf-8").splitlines(keepends=True)
    assert len(lines) == len(listing)
    ok = kyso("audit", "verify", "--file", str(export))
    assert ok.returncode == 0 and f"intact: {len(lines)} entries" in ok.stdout
    tampered = tmp_path / "tampered.jsonl"
    item = json.loads(lines[1])
    item["actor"] = "cli:someone-else"
    tampered.write_text("".join([lines[0], json.dumps(item, ensure_ascii=False) + "\n", *lines[2:]]), "utf-8")
    broken = kyso("audit", "verify", "--file", str(tampered), check=False)
    assert broken.returncode == 1 and "entry 2" in broken.stderr
    missing = tmp_path / "missing.jsonl"
    missing.write_text("".join([lines[0], *lines[2:]]), "utf-8")
    assert kyso("audit", "verify", "--file", str(missing), check=False).returncode == 1
    filtered = tmp_path / "filtered.jsonl"
    filtered.write_text(kyso("audit", "export", "--action", "pki:ca:*").stdout, "utf-8")
    assert kyso("audit", "verify", "--file", str(filtered), check=False).returncode == 1  # not the whole chain
    assert kyso("audit", "verify", "--file", str(filtered), "--partial").returncode == 0


def test_ca_init_from_a_config_file(kyso, tmp_path):
    config = tmp_path / "ca.toml"
    config.write_text('[root]\nname = "hn-root"\ncommon_name = "Hà Nội Root"\nkey_type = "ec-p256"\n'
                      '[issuing]\nname = "hn-issuing"\ncommon_name = "Hà Nội Issuing"\n', "utf-8")
    result = json.loads(kyso("ca", "init", "--config", str(config), "--json").stdout)
    assert sorted(result["created"]) == ["hn-issuing", "hn-root"]
    bad = tmp_path / "bad.toml"
    bad.write_text('[root]\ncolour = "red"\n')
    assert kyso("ca", "init", "--config", str(bad), check=False).returncode != 0


def test_sign_and_registry_commands(kyso, tmp_path):
    corpus = Path(__file__).resolve().parents[1] / "corpus"
    kyso("ca", "init", "--json")
    # the operator signs with the organisation seal (a certified copy); a specialist's credential would ask for
    # her PIN and code (tests/signing/activation/test_only_her_sad.py)
    credential = json.loads(kyso("cert", "issue", "--profile", "seal", "--cn", "Ủy ban nhân dân phường Ba Đình",
                                 "--commune", "00004", "--json").stdout)["credential_id"]
    image = Path(__file__).resolve().parents[2] / "signing" / "create" / "assets" / "sample-seal.png"
    assert "enrolled" in kyso("doc", "enroll-image", credential, str(image), "--kind", "seal").stdout
    signed = json.loads(kyso("sign", str(corpus / "fourpages.pdf"), "-o", str(tmp_path / "out.pdf"), "-c", credential,
                             "--commune", "00004", "--type", "certified-copy", "--dossier", "HS-9", "--level", "B-LT",
                             "--json").stdout)
    assert signed["level"] == "B-LT" and (tmp_path / "out.pdf").read_bytes().startswith(b"%PDF")
    listing = json.loads(kyso("doc", "list", "--dossier", "HS-9", "--json").stdout)
    assert listing["total"] == 1 and listing["items"][0]["document_id"] == signed["document_id"]
    shown = json.loads(kyso("doc", "show", signed["document_id"], "--json").stdout)
    assert shown["verify_url"] == signed["verify_url"] and shown["status"] == "valid"
    kyso("doc", "get", signed["document_id"], "-o", str(tmp_path / "copy.pdf"))
    assert (tmp_path / "copy.pdf").read_bytes() == (tmp_path / "out.pdf").read_bytes()
    assert json.loads(kyso("doc", "gc", "--json").stdout) == {"rebased": 0, "removed": 0, "damaged": []}, \
        "nothing to collect"
    assert "withdrawn" in kyso("doc", "withdraw", signed["document_id"], "--reason", "issued in error").stdout
    batch = kyso("sign", str(corpus / "outlines.pdf"), str(corpus / "graph-encrypted.pdf"), "--out-dir",
                 str(tmp_path / "batch"), "-c", credential, "--commune", "00004", "--type", "certified-copy", "--json",
                 check=False)
    assert batch.returncode == 1, "one failed file makes the batch exit 1"
    items = json.loads(batch.stdout)
    assert "document_id" in items[0] and items[1]["error"]["code"] == "encrypted_pdf"
    assert (tmp_path / "batch" / "outlines-signed.pdf").exists()


def test_verify_command(kyso, tmp_path):
    """kyso verify: exit 0 only for a genuine document, 1 for anything else, 2 for input it cannot read."""
    corpus = Path(__file__).resolve().parents[1] / "corpus"
    kyso("ca", "init", "--json")
    credential = json.loads(kyso("cert", "issue", "--profile", "seal", "--cn", "Ủy ban nhân dân phường Ba Đình",
                                 "--commune", "00004", "--json").stdout)["credential_id"]  # the operator signs seals
    signed = tmp_path / "signed.pdf"
    document_id = json.loads(kyso("sign", str(corpus / "fourpages.pdf"), "-o", str(signed), "-c", credential,
                                  "--commune", "00004", "--type", "certified-copy", "--level", "B-LT", "--invisible",
                                  "--json").stdout)["document_id"]
    report = json.loads(kyso("verify", str(signed), "--json", "--html", str(tmp_path / "r.html")).stdout)
    assert report["indication"] == "TOTAL-PASSED" and report["registry"]["document_id"] == document_id
    assert "Báo cáo kiểm tra chữ ký số" in (tmp_path / "r.html").read_text(encoding="utf-8")
    assert "Genuine" in kyso("verify", str(signed), "--lang", "en").stdout
    data = bytearray(signed.read_bytes())
    at = data.index(b"stream", 200) + 20  # inside page content, which the signature covers
    data[at] = (data[at] + 1) % 256
    tampered = tmp_path / "tampered.pdf"
    tampered.write_bytes(bytes(data))
    failed = kyso("verify", str(tampered), "--json", check=False)
    assert failed.returncode == 1 and json.loads(failed.stdout)["indication"] != "TOTAL-PASSED"
    sealed = kyso("verify", str(signed), "--pdf", str(tmp_path / "r.pdf"), check=False)
    assert sealed.returncode == 2 and "KYSO_REPORT_SEAL_CREDENTIAL" in sealed.stderr
    (tmp_path / "note.txt").write_text("not a pdf")
    bad = kyso("verify", str(tmp_path / "note.txt"), check=False)
    assert bad.returncode == 2 and "unreadable_pdf" in bad.stderr
