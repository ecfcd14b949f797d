"""KYSO_ENVIRONMENT=production refuses development shortcuts, each with what, why and how to fix it;
development keeps its defaults. New private files are owner-only in every environment."""
from __future__ import annotations

import secrets
import stat
from pathlib import Path

import pytest

from core import production
from core.errors import ConfigurationError
from core.settings import Settings, load_settings

STRONG = secrets.token_urlsafe(32)
HTTPS = "https://kyso.example.vn"


@pytest.fixture(autouse=True)
def _no_kyso_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("KYSO_ENVIRONMENT", "KYSO_SOFT_MASTER_KEY", "KYSO_BASE_URL", "KYSO_CONFIG", "KYSO_DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)


def production_settings(home: Path, **extra: object) -> Settings:
    return load_settings(**{"environment": "production", "home": home, "soft_master_key": STRONG,
                            "base_url": HTTPS, **extra})


@pytest.mark.parametrize("weak", [
    "a" * 16, "a" * 64,  # repeated characters, however many
    "abcdefghijklmnopqrstuvwxyz0123456789",  # runs
    "Xy7#pQ2!",  # short
    "changeme" * 4, "password-password-password", "test-master-key-" + "x" * 16, "kyso-secret-kyso-secret-2026",
    "Changeme2026!Changeme2026!",  # placeholders dressed up
])
def test_weak_master_keys_are_refused_in_production(tmp_path: Path, weak: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        production_settings(tmp_path, soft_master_key=weak)
    message = info.value.message
    assert "KYSO_SOFT_MASTER_KEY" in message and "128" in message and "token_urlsafe(32)" in message
    assert weak not in message  # the secret is never echoed
    assert production.estimated_bits(weak) < production.MIN_SECRET_BITS
    # development takes it (the test suite's own key is one of these)
    assert load_settings(home=tmp_path, soft_master_key=weak).environment == "development"


def test_strong_master_keys_are_accepted() -> None:
    for _ in range(20):
        assert production.estimated_bits(secrets.token_urlsafe(32)) >= production.MIN_SECRET_BITS
        assert production.estimated_bits(secrets.token_hex(32)) >= production.MIN_SECRET_BITS
    assert production.weak_secret(STRONG, "key") is None


def test_http_external_url_is_refused_in_production(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError) as info:
        production_settings(tmp_path, base_url="http://kyso.example.vn")
    assert "KYSO_BASE_URL" in info.value.message and "https://" in info.value.message
    assert "/me" in info.value.message
    assert production_settings(tmp_path).base_url == HTTPS
    assert load_settings(home=tmp_path).base_url == "http://127.0.0.1:8000"  # development default


def test_loose_database_and_keystore_files_stop_production(tmp_path: Path) -> None:
    settings = production_settings(tmp_path, database_url=f"sqlite:///{tmp_path / 'kyso.db'}")
    database = tmp_path / "kyso.db"
    database.write_bytes(b"")
    keystore = settings.keystore_dir
    keystore.mkdir(mode=0o700)
    key = keystore / "k.pem"
    key.write_bytes(b"x")
    for path, mode in ((database, 0o600), (key, 0o600)):
        path.chmod(mode)
    production.check_start(settings)  # all private: starts

    for path, loose, fix in ((database, 0o644, f"chmod 600 {database}"), (keystore, 0o755, f"chmod 700 {keystore}"),
                             (key, 0o640, f"chmod 600 {key}")):
        private = stat.S_IMODE(path.stat().st_mode)
        path.chmod(loose)
        with pytest.raises(ConfigurationError) as info:
            production.check_start(settings)
        assert info.value.code == "files_not_private" and str(path) in info.value.message
        assert fix in info.value.message and "personal data" in info.value.message
        dev = load_settings(home=tmp_path, database_url=f"sqlite:///{database}")
        production.check_start(dev)  # development: not refused
        path.chmod(private)
    production.check_start(settings)


def test_a_weak_master_key_file_is_refused_in_production(tmp_path: Path) -> None:
    from hsm.soft import master_passphrase

    key_file = tmp_path / "master.key"
    key_file.write_text("changeme-changeme\n")
    key_file.chmod(0o600)
    settings = production_settings(tmp_path, soft_master_key=None, soft_master_key_file=key_file)
    with pytest.raises(ConfigurationError) as info:
        master_passphrase(settings)
    assert str(key_file) in info.value.message and "changeme-changeme" not in info.value.message
    key_file.write_text(STRONG + "\n")
    assert master_passphrase(settings) == STRONG.encode()
    key_file.chmod(0o644)
    with pytest.raises(ConfigurationError, match="chmod 600"):
        production.check_start(settings)


def test_new_private_files_are_owner_only_in_every_environment(tmp_path: Path) -> None:
    """The SQLite file, the soft keystore folder, its keys and the master key file are created owner-only."""
    from core.db import make_engine
    from hsm import KeyType
    from hsm.soft import SoftKeyStore, master_passphrase

    database = tmp_path / "data" / "kyso.db"
    engine = make_engine(f"sqlite:///{database}")
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE t (x INTEGER)")
        conn.exec_driver_sql("INSERT INTO t VALUES (1)")
    assert stat.S_IMODE(database.stat().st_mode) == 0o600
    for extra in ("-wal", "-shm"):  # SQLite gives them the database file's mode
        side = database.with_name(database.name + extra)
        if side.exists():
            assert stat.S_IMODE(side.stat().st_mode) == 0o600
    engine.dispose()
    settings = load_settings(home=tmp_path / "home")
    passphrase = master_passphrase(settings)  # development: created on first use
    store = SoftKeyStore(settings.keystore_dir, passphrase)
    store.generate(KeyType.EC_P256, "test")
    assert stat.S_IMODE(settings.keystore_dir.stat().st_mode) == 0o700
    files = list(settings.keystore_dir.iterdir())
    assert len(files) == 3 and all(stat.S_IMODE(f.stat().st_mode) == 0o600 for f in files)
    assert production.loose_files(settings) == []
