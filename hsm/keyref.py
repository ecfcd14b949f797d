"""Routes a key reference to the backend that holds it, by its scheme prefix."""
from __future__ import annotations

from core.settings import Settings

from .errors import KeyNotFound, KeystoreMisconfigured
from .interfaces import KeyStore


class KeyStoreRegistry:
    """The configured keystores by scheme; the default one receives new keys."""

    def __init__(self, stores: dict[str, KeyStore], default: str) -> None:
        if default not in stores:
            raise KeystoreMisconfigured(f"default keystore {default!r} is not configured")
        self._stores, self.default = stores, default

    @classmethod
    def from_settings(cls, settings: Settings) -> KeyStoreRegistry:
        from .soft import SoftKeyStore

        stores: dict[str, KeyStore] = {"soft": SoftKeyStore.from_settings(settings)}
        if settings.pkcs11_module is not None:
            from .pkcs11 import Pkcs11KeyStore

            stores["pkcs11"] = Pkcs11KeyStore.from_settings(settings)
        if settings.vault_addr is not None:
            from .vault import VaultKeyStore

            stores["vault"] = VaultKeyStore.from_settings(settings)
        return cls(stores, settings.keystore)

    def get(self, name: str | None = None) -> KeyStore:
        name = name or self.default
        try:
            return self._stores[name]
        except KeyError:
            raise KeystoreMisconfigured(
                f"keystore {name!r} is not configured here (configured: {', '.join(sorted(self._stores))})"
            ) from None

    def for_ref(self, ref: str) -> KeyStore:
        scheme = ref.split(":", 1)[0]
        if scheme not in self._stores:
            raise KeyNotFound(f"key {ref} belongs to keystore {scheme!r}, which is not configured")
        return self._stores[scheme]

    def names(self) -> list[str]:
        return sorted(self._stores)

    def health(self) -> dict[str, str]:
        report = {}
        for name, store in self._stores.items():
            try:
                report[name] = store.health()
            except Exception as exc:  # noqa: BLE001 - health reports, never raises
                report[name] = f"unavailable: {exc}"
        return report
