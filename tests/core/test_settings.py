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
