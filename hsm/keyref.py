"""Routes a key reference to the backend that holds it, by its scheme prefix."""
from __future__ import annotations

from .errors import KeyNotFound, KeystoreMisconfigured
from .interfaces import KeyStore


class KeyStoreRegistry:
    """The configured keystores by scheme; the default one receives new keys."""

    def __init__(self, stores: dict[str, KeyStore], default: str) -> None:
        if default not in stores:
            raise KeystoreMisconfigured(f"default keystore {default!r} is not configured")
        self._stores, self.default = stores, default

    @classmethod
    def from_settings(cls, settings) -> "KeyStoreRegistry":  # type: ignore[no-untyped-def]
        from .soft import SoftKeyStore

        return cls({"soft": SoftKeyStore.from_settings(settings)}, settings.keystore)

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
