"""``kyso units contacts FILE``: the operator loads People's Committees' addresses and phones, as a subprocess."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.helpers.db import make_settings


def test_units_contacts_command(tmp_path: Path, db_url: str) -> None:
    settings = make_settings(tmp_path / "home", db_url)
    env = {**os.environ, "KYSO_HOME": str(settings.home), "KYSO_DATABASE_URL": db_url,
           "KYSO_SOFT_MASTER_KEY": settings.soft_master_key.get_secret_value(), "COLUMNS": "200"}

    def kyso(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "api.cli", *args], env=env, capture_output=True, text=True,
                              timeout=120)

    good = tmp_path / "contacts.json"
    good.write_text(json.dumps([{"code": "00004", "address": "Số 1 phố Thử Nghiệm", "phone": "024 0000 0000",
                                 "source": "tệp thử nghiệm"}], ensure_ascii=False), "utf-8")
    first = kyso("units", "contacts", str(good), "--json")
    assert first.returncode == 0, first.stderr
    assert json.loads(first.stdout) == {"changed": 1, "unchanged": 0, "codes": ["00004"]}
    again = kyso("units", "contacts", str(good))
    assert again.returncode == 0 and "0 changed, 1 unchanged" in again.stdout
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps([{"code": "00004", "phone": "hỏi bác bảo vệ", "source": "x"}]), "utf-8")
    refused = kyso("units", "contacts", str(bad))
    assert refused.returncode != 0 and "not a phone number" in refused.stderr and "Traceback" not in refused.stderr
    assert "People's Committees" in kyso("units", "contacts", "--help").stdout
