"""Settings are read once and refused with a clear, secret-free reason."""
import pytest


def test_settings_errors_never_echo_values(tmp_path, monkeypatch):
    """A mistyped key in the config file may hold a secret: the error names it, not its value."""
    from core.errors import ConfigurationError
    from core.settings import load_settings

    config = tmp_path / "kyso.toml"
    config.write_text('vault_tokn = "s.TOPSECRET"\nvault_timeout_seconds = "soon"\n')
    monkeypatch.setenv("KYSO_CONFIG", str(config))
    with pytest.raises(ConfigurationError) as info:
        load_settings()
    assert "vault_tokn" in info.value.message and "vault_timeout_seconds" in info.value.message
    assert "TOPSECRET" not in info.value.message and "soon" not in info.value.message


def test_database_pool_follows_the_settings(capsys) -> None:
    """Workers × (pool + overflow) must fit PostgreSQL's max_connections: both numbers are settings, and
    `kyso serve` warns when the product does not fit."""
    from api.cli.serve import _warn_connection_budget
    from core.db import make_engine
    from core.settings import Settings
    from tests.helpers.db import PG_URL

    settings = Settings(database_url=PG_URL, database_pool_size=3, database_max_overflow=1)
    engine = make_engine(settings.resolved_database_url, pool_size=settings.database_pool_size,
                         max_overflow=settings.database_max_overflow)
    assert (engine.pool.size(), engine.pool._max_overflow) == (3, 1)
    engine.dispose()
    _warn_connection_budget(settings, 2)
    assert capsys.readouterr().err == ""
    _warn_connection_budget(Settings(database_url=PG_URL, database_pool_size=500, database_max_overflow=500), 4)
    assert "max_connections" in capsys.readouterr().err


@pytest.mark.parametrize("url", ["https://xác-thực.gov.vn", "https://kyso.example.vn/xã", "https://kyso.vn/a b",
                                 "https://kyso.vn/\u200b"])
def test_the_base_url_printed_in_qr_codes_is_plain_ascii(tmp_path, url) -> None:
    """Every QR code and certificate carries KYSO_BASE_URL: a non-ASCII one would be encoded in a character
    set a phone may read differently (and is no IA5String), so it is refused at start, not signed into PDFs."""
    from core.errors import ConfigurationError
    from core.settings import load_settings

    with pytest.raises(ConfigurationError, match="KYSO_BASE_URL"):
        load_settings(home=tmp_path, base_url=url)
    assert load_settings(home=tmp_path, base_url="https://xn--xc-thc-xqa7e.gov.vn/").base_url.endswith(".gov.vn")
