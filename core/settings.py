"""Typed settings, read once at start from ``KYSO_*`` variables and an optional TOML file."""
from __future__ import annotations

import ipaddress
import os
from functools import cached_property
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict, TomlConfigSettingsSource

from . import production
from .errors import ConfigurationError


class Settings(BaseSettings):
    """Everything kyso can be told. Unknown ``KYSO_*`` keys in the TOML file are refused."""

    model_config = SettingsConfigDict(env_prefix="KYSO_", extra="forbid", toml_file=None)

    environment: Literal["development", "production"] = "development"
    home: Path = Field(default=Path("./var"), description="Data folder (database, soft keystore, published files)")
    database_url: str | None = Field(default=None, description="SQLAlchemy URL; SQLite in KYSO_HOME when unset")
    database_read_url: str | None = Field(default=None, description="SQLAlchemy URL of a PostgreSQL streaming "
                                          "replica for reads (verification, the citizen page, OCSP, registry "
                                          "reads); a read it cannot answer (replica lag, replica down) goes to "
                                          "the primary. Writes always go to KYSO_DATABASE_URL")
    database_pool_size: int = Field(default=10, ge=1, le=500,
                                    description="Database connections each worker process keeps")
    database_max_overflow: int = Field(default=20, ge=0, le=500,
                                       description="Extra connections a worker may open at peaks; "
                                       "workers × (pool size + overflow) must fit the server's max_connections")
    base_url: str = Field(default="http://127.0.0.1:8000", description="Public URL used in AIA, CDP and QR codes")

    keystore: Literal["soft", "pkcs11", "vault"] = Field(default="soft", description="Keystore that receives new keys")
    # PKCS#11 (enabled when a module is configured); the PIN never comes from the command line
    pkcs11_module: Path | None = Field(default=None,
                                       description="PKCS#11 library, e.g. /usr/lib/softhsm/libsofthsm2.so")
    pkcs11_token_label: str | None = None
    pkcs11_pin: SecretStr | None = None
    pkcs11_pin_file: Path | None = None
    pkcs11_pool_size: int = Field(default=8, ge=1, le=64)
    # Vault / OpenBao Transit (enabled when an address is configured)
    vault_addr: str | None = Field(default=None, description="e.g. https://vault.example.vn:8200")
    vault_mount: str = "transit"
    vault_token: SecretStr | None = None
    vault_token_file: Path | None = None
    vault_role_id: str | None = None
    vault_secret_id: SecretStr | None = None
    vault_namespace: str | None = None
    vault_ca_cert: Path | None = None
    vault_tls_verify: bool = True
    vault_timeout_seconds: float = Field(default=5, gt=0)
    soft_master_key: SecretStr | None = Field(default=None, description="Passphrase protecting the soft keystore")
    soft_master_key_file: Path | None = Field(default=None, description="File holding that passphrase")

    migrate_on_start: bool = Field(default=True, description="Apply migrations and seed data when a process starts")
    run_scheduler: bool = Field(default=True, description="Republish CRLs/OCSP, renew service certificates and upgrade "
                                "pending documents in the background; off on a restored copy or a read-only node")
    max_body_bytes: int = Field(default=1_048_576, ge=1024)
    crl_validity_hours: int = Field(default=24, ge=1)
    delta_crl_validity_hours: int = Field(default=4, ge=1)
    ocsp_validity_hours: int = Field(default=24, ge=1)
    ocsp_refresh_before_hours: int = Field(default=6, ge=0)
    ocsp_cache_check_seconds: float = Field(
        default=0.5, ge=0, description="How often a worker checks for revocations made by other workers "
        "before serving cached OCSP answers (0: before every answer)")
    republish_interval_seconds: int = Field(default=900, ge=10, description="Scheduled CRL/OCSP refresh")

    # Signing and timestamping
    max_pdf_bytes: int = Field(default=50 * 1_048_576, ge=1024, description="Largest PDF accepted for signing")
    max_batch_items: int = Field(default=50, ge=1, le=1000, description="Most PDFs in one batch request")
    tsa_url: str | None = Field(default=None, description="External RFC 3161 TSA; kyso's own TSA when unset")
    tsa_username: str | None = None
    tsa_password: SecretStr | None = None
    tsa_timeout_seconds: float = Field(default=5, gt=0, description="Wait this long for a timestamp, then sign "
                                       "B-B and upgrade the document in the background")
    tsa_policy_oid: str = Field(default="0.4.0.2023.1.1", description="TSA policy (ETSI TS 119 421 best practice)")
    upgrade_max_attempts: int = Field(default=8, ge=1, description="Background B-T/B-LT upgrade attempts")
    upgrade_backoff_seconds: float = Field(default=30, gt=0, description="First retry delay; doubles each attempt")
    blob_store: Literal["database", "filesystem"] = Field(
        default="database", description="Where document versions' bytes are kept: the registry's database "
        "(written in the signing's transaction) or content-addressed files under KYSO_HOME/blobs")
    input_retention_days: int = Field(default=30, ge=0, description="Keep a caller's original input at most "
                                      "this many days (less when the document reaches its final level first); "
                                      "then the first version is stored whole and the input dropped")
    blob_gc_grace_hours: int = Field(default=24, ge=1, description="`kyso doc gc` removes blobs nothing "
                                     "references only when they are older than this")
    stamp_font: Path = Field(default=Path("/usr/share/fonts/truetype/liberation2/LiberationSerif-Regular.ttf"),
                             description="Unicode TrueType font embedded in visible signatures")
    stamp_font_bold: Path = Field(default=Path("/usr/share/fonts/truetype/liberation2/LiberationSerif-Bold.ttf"))

    policy_file: Path | None = Field(default=None, description="Signing policy (document types, who may sign, "
                                     "jurisdiction); default: the bundled policies/documents/document-types.yaml. "
                                     "Edited files are picked up within seconds; a bad one is refused and the old "
                                     "policy stays in force")
    # Verification
    trust_anchors: list[Path] = Field(default_factory=list, description="Extra trust anchors (PEM/DER files or "
                                      "folders of them), e.g. another province's CA; kyso's own roots and Vietnam's "
                                      "government and national roots are always trusted")
    trust_vietnam_roots: bool = Field(default=True, description="Trust the bundled Vietnamese roots (policies/trust)")
    verify_fetch_revocation: bool = Field(default=False, description="Fetch OCSP/CRL over the network for "
                                          "certificates kyso did not issue when the file carries none (off: such "
                                          "signatures are INDETERMINATE/TRY_LATER instead of waiting on a foreign CA)")
    report_seal_credential: str | None = Field(default=None, description="Seal credential that signs PDF "
                                               "verification reports (kyso's organisation seal)")
    verify_max_signatures: int = Field(default=20, ge=1, le=1000, description="Most signatures (document "
                                       "timestamps included) a file may carry to be verified; more is refused (422)")
    verify_max_revisions: int = Field(default=50, ge=1, le=10_000, description="Most revisions (incremental "
                                      "updates) a file may carry to be verified; more is refused (422)")
    verify_time_budget_seconds: float = Field(default=10, gt=0, description="CPU seconds one verification may use "
                                              "(3x that in elapsed time) before it is refused as too complex")
    verify_max_concurrent: int = Field(default_factory=lambda: max(2, 2 * (os.cpu_count() or 1)), ge=1,
                                       description="Public verifications running at once in each worker "
                                       "process (default: twice the CPU count, at least 2)")
    verify_queue_wait_seconds: float = Field(default=2, ge=0, description="How long a public verification "
                                             "waits for a free slot before it is answered 503 with Retry-After")
    serve_role: Literal["all", "ocsp", "api"] = Field(default="all", description="What this node's workers serve "
                                                      "(kyso serve --role): all; ocsp (OCSP, CRLs, time-stamps, CA "
                                                      "certificates, /healthz, /readyz, /metrics); api (all but those)")
    verify_rate_per_second: float = Field(default=5.0, gt=0, description="Open verification requests per second "
                                          "per client address (average)")
    verify_burst: int = Field(default=30, ge=1, description="Burst of verification requests allowed per address")
    trusted_proxies: list[str] = Field(default_factory=list, description="Reverse proxies (addresses or networks) "
                                       "whose X-Forwarded-For is believed for rate limits, and whose client "
                                       "certificate header (KYSO_CLIENT_CERT_HEADER) is believed for mTLS")
    client_cert_header: str = Field(default="X-Client-Cert", pattern=r"^[A-Za-z0-9-]{1,64}$",
                                    description="Request header in which a trusted proxy forwards the TLS client "
                                    "certificate it verified: URL-encoded PEM (nginx: $ssl_client_escaped_cert). "
                                    "From any other address the header is ignored")
    # Signature activation (the specialist's PIN + authenticator; NIST SP 800-63B 5.2.2 throttling)
    activation_throttle_after: int = Field(default=5, ge=1, le=1000, description="Failed PIN/code attempts for one "
                                           "person from one address before each further attempt must wait "
                                           "2^(n-limit) seconds (growing, capped)")
    activation_throttle_cap_seconds: int = Field(default=900, ge=1, description="Longest wait the throttle imposes")
    activation_lock_after: int = Field(default=100, ge=10, le=100_000, description="Failed attempts on one "
                                       "credential (from every address) after which it locks until an operator "
                                       "unlocks it; the throttle makes reaching it take days")
    enrolment_code_hours: int = Field(default=72, ge=1, le=24 * 30, description="How long an enrolment code "
                                      "handed to a specialist stays redeemable on /me/enrol")
    # Transparency log witnesses (C2SP tlog-witness)
    witness_name: str | None = Field(default=None, description="This kyso's name as a witness (a note key name); "
                                     "<host of KYSO_BASE_URL>/witness when unset")
    log_witnesses: list[str] = Field(default_factory=list, description="Witnesses the log asks to cosign each "
                                     "checkpoint: '<submission URL prefix> <witness verifier key>' per entry")
    log_witness_timeout_seconds: float = Field(default=5, gt=0, le=60,
                                               description="How long the log waits for one witness's answer")
    # Operations
    log_format: Literal["json", "text"] = Field(default="json", description="`kyso serve` logs: one JSON object "
                                                "per line (request id, route, status, duration) or plain text")
    access_log: bool = Field(default=True, description="One log line per HTTP request (method, path without the "
                             "query, status, duration, request id)")
    metrics_public: bool = Field(default=False, description="Serve /metrics without a token (only behind a proxy "
                                 "that keeps it internal); otherwise it needs an auditor or read-only token")

    @field_validator("base_url")
    @classmethod
    def _strip_slash(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("KYSO_BASE_URL must start with http:// or https://")
        if not value.isascii() or any(c.isspace() or not c.isprintable() for c in value):
            # printed in every QR code (a reader may decode other characters differently) and written into
            # certificates (AIA, CRL distribution points: IA5String)
            raise ValueError("KYSO_BASE_URL must be plain ASCII without spaces: write a Vietnamese domain in its "
                             "xn-- form and percent-encode a path")
        return value.rstrip("/")

    @field_validator("log_witnesses")
    @classmethod
    def _witnesses(cls, value: list[str]) -> list[str]:
        for entry in value:  # refused at start; the key itself is parsed by pki.transparency.witness_client
            parts = entry.split()
            if len(parts) != 2 or not parts[0].startswith(("http://", "https://")) or parts[1].count("+") < 2:
                raise ValueError(f"{entry!r} in KYSO_LOG_WITNESSES is not '<https URL> <name+hash+key>'")
        return value

    @field_validator("trusted_proxies")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        for entry in value:  # refused at start, not when the first forwarded request arrives
            try:
                ipaddress.ip_network(entry, strict=False)
            except ValueError:
                raise ValueError(f"{entry!r} in KYSO_TRUSTED_PROXIES is not an IP address or network") from None
        return value

    @model_validator(mode="after")
    def _replica_needs_a_server(self) -> Settings:
        if self.database_read_url is not None and not self.resolved_database_url.startswith("postgresql"):
            raise ValueError("KYSO_DATABASE_READ_URL is a PostgreSQL replica; it needs KYSO_DATABASE_URL to be "
                             "its PostgreSQL primary, not the embedded SQLite database")
        if self.database_read_url is not None and not self.database_read_url.startswith("postgresql"):
            raise ValueError("KYSO_DATABASE_READ_URL must be a postgresql:// URL (a streaming replica)")
        return self

    @model_validator(mode="after")
    def _production_means_production(self) -> Settings:
        """In production: no weak master key, no http:// external URL (see core/production.py)."""
        if self.environment != "production":
            return self
        secret = self.soft_master_key.get_secret_value() if self.soft_master_key else None
        if secret is not None and (reason := production.weak_secret(secret, "KYSO_SOFT_MASTER_KEY")):
            raise ValueError(reason)
        if not self.base_url.startswith("https://"):
            raise ValueError("KYSO_BASE_URL is http://, but specialists type their PIN and one-time codes on "
                             f"{self.base_url}/me and its session cookie must be Secure; production needs the https:// "
                             "address of the TLS reverse proxy in front of kyso, e.g. KYSO_BASE_URL=https://kyso.example.vn")
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        config_file = os.environ.get("KYSO_CONFIG")
        if config_file:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=Path(config_file)))
        return tuple(sources)

    @cached_property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.home.resolve() / 'kyso.db'}"

    @property
    def keystore_dir(self) -> Path:
        return self.home / "keystore"

    @property
    def blob_dir(self) -> Path:
        return self.home / "blobs"


def load_settings(**overrides: object) -> Settings:
    """Read settings; turn pydantic's validation error into kyso's configuration error."""
    config_file = os.environ.get("KYSO_CONFIG")
    if config_file and not Path(config_file).is_file():
        raise ConfigurationError(f"KYSO_CONFIG names {config_file}, which is not a readable file")
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        # name the setting and the problem, never the value: a mistyped key may hold a secret
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'settings'}: {e['msg'].removeprefix('Value error, ')}"
                             for e in exc.errors(include_input=False, include_url=False))
        raise ConfigurationError(f"invalid settings: {problems}") from None
