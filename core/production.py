"""What ``KYSO_ENVIRONMENT=production`` refuses, so a development shortcut never reaches real specialists.

Checked when the settings are read (``core/settings.py``):

- a soft keystore master key with less than ``MIN_SECRET_BITS`` of estimated entropy (``estimated_bits``);
- an ``http://`` external URL: the specialists' page ``/me`` takes PINs and one-time codes.

Checked when a process starts (``check_start``: ``kyso serve`` before its workers, and every container
``build``, so the web app and every CLI command):

- the SQLite database (personal data: names, ID numbers, PIN hashes, sealed TOTP secrets), the soft
  keystore folder and its files, and the secret files named in the settings, readable or writable by
  group or others;
- a data folder set up by ``kyso demo`` (its specialist's PIN is printed in the demo's instructions).

``kyso demo`` itself refuses to run in production (``api/cli/serve.py``). In every environment the
SQLite file is created 0600 (``core/db.py``) and the keystore folder 0700 with 0600 files (``hsm/soft.py``).
Each refusal is a ``ConfigurationError`` that says what, why and how to fix it; the CLI prints it and exits
with status 2.
"""
from __future__ import annotations

import math
import stat
import string
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import ConfigurationError

if TYPE_CHECKING:
    from .settings import Settings

MIN_SECRET_BITS = 128
# words that carry no secret however they are dressed up ("Changeme2026!", "kyso-secret-kyso-secret")
PLACEHOLDER_WORDS = ("changeme", "change-me", "change_me", "password", "passwd", "secret", "test", "kyso", "demo",
                     "example", "default", "admin", "master", "qwerty", "letmein", "abc123")
DEMO_STATE_FILE = "demo-signing.json"  # written by `kyso demo` in KYSO_HOME
GENERATE_HINT = "generate one with: python3 -c 'import secrets; print(secrets.token_urlsafe(32))'"


# -- secrets ---------------------------------------------------------------------------------------------
def _without_words(secret: str) -> str:
    """The secret with every placeholder word taken out (case-insensitive): words add nothing to guess."""
    lower = secret.lower()
    keep = [True] * len(secret)
    for word in PLACEHOLDER_WORDS:
        start = lower.find(word)
        while start != -1:
            keep[start:start + len(word)] = [False] * len(word)
            start = lower.find(word, start + 1)
    return "".join(c for c, k in zip(secret, keep, strict=True) if k)


def _shortest_period(text: str) -> str:
    """``abcabcab`` → ``abc``: a repeated block is worth one block."""
    for period in range(1, len(text) // 2 + 1):
        if all(text[i] == text[i % period] for i in range(len(text))):
            return text[:period]
    return text


def _pool(text: str) -> int:
    """How many symbols an attacker must try per character, from the character classes the text uses."""
    if text and all(c in string.hexdigits for c in text) and not all(c in string.digits for c in text):
        return 16
    size = 0
    for cls, count in ((string.ascii_lowercase, 26), (string.ascii_uppercase, 26), (string.digits, 10)):
        if any(c in cls for c in text):
            size += count
    if any(c in string.punctuation or c == " " for c in text):
        size += 33
    if any(not c.isascii() for c in text):
        size += 100
    return size


def estimated_bits(secret: str) -> float:
    """A conservative estimate of a passphrase's entropy in bits.

    Placeholder words count for nothing, a repeated block counts once, and within the rest a character
    that repeats the one before it (``aa``) or continues a run (``abc``, ``321``) counts for nothing;
    every other character counts log2 of its alphabet (16 for hex, else the classes used: lower, upper,
    digits, punctuation, other). A random ``secrets.token_urlsafe(32)`` scores about 250 bits, sixteen
    ``a`` about 5, ``Changeme2026!Changeme2026!`` about 27. Dictionary words other than the placeholders
    are not recognised: a phrase of common words scores higher than it deserves.
    """
    text = _shortest_period(_without_words(secret))
    if not text:
        return 0.0
    per_char = math.log2(_pool(text))
    bits = 0.0
    for i, char in enumerate(text):
        if i >= 1 and char == text[i - 1]:
            continue
        if i >= 2 and abs(ord(char) - ord(text[i - 1])) == 1 and ord(char) - ord(text[i - 1]) == ord(
                text[i - 1]) - ord(text[i - 2]):
            continue
        bits += per_char
    return bits


def weak_secret(secret: str, what: str) -> str | None:
    """Why ``secret`` is too weak for production (never quoting it), or ``None`` when it is strong enough."""
    bits = estimated_bits(secret)
    if bits >= MIN_SECRET_BITS:
        return None
    return (f"{what} has about {bits:.0f} bits of estimated entropy; production needs at least {MIN_SECRET_BITS} "
            "(repeated characters, runs such as 'abcd' or '1234' and words such as 'changeme', 'password', 'test', "
            f"'secret' or 'kyso' count for nothing). A weak master key lets anyone who copies the keystore files "
            f"open every private key; {GENERATE_HINT}")


def check_secret(secret: str, what: str) -> None:
    reason = weak_secret(secret, what)
    if reason is not None:
        raise ConfigurationError(reason, code="weak_secret")


# -- files -------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class LooseFile:
    path: Path
    mode: int
    directory: bool

    def __str__(self) -> str:
        return f"{self.path} ({stat.filemode(self.mode)})"


def _loose(path: Path) -> LooseFile | None:
    try:
        mode = path.stat().st_mode
    except OSError:  # absent (no SQLite -wal yet), or not ours to look at: reading it will say so
        return None
    return LooseFile(path, mode, stat.S_ISDIR(mode)) if mode & 0o077 else None


def sqlite_path(url: str) -> Path | None:
    """The database file of a ``sqlite:///`` URL, ``None`` for a server database or ``:memory:``."""
    if not url.startswith("sqlite:///"):
        return None
    raw = url.removeprefix("sqlite:///").split("?", 1)[0]
    return None if raw in ("", ":memory:") else Path(raw)


def private_paths(settings: Settings) -> list[Path]:
    """Every file and folder of this deployment that only kyso's own user may read."""
    paths: list[Path] = []
    database = sqlite_path(settings.resolved_database_url)
    if database is not None:
        paths += [database] + [database.with_name(database.name + s) for s in ("-wal", "-shm", "-journal")]
    keystore = settings.keystore_dir
    if keystore.is_dir():
        paths += [keystore, *sorted(keystore.iterdir())]
    paths += [p for p in (settings.soft_master_key_file, settings.pkcs11_pin_file, settings.vault_token_file) if p]
    return paths


def loose_files(settings: Settings) -> list[LooseFile]:
    return [found for path in private_paths(settings) if (found := _loose(path)) is not None]


def check_start(settings: Settings) -> None:
    """Refuse to start a production process on files others can read, or on the demo's data."""
    if settings.environment != "production":
        return
    if (settings.home / DEMO_STATE_FILE).exists():
        raise ConfigurationError(
            f"KYSO_HOME ({settings.home}) was set up by `kyso demo` ({DEMO_STATE_FILE}): its specialist has the demo "
            "PIN printed in the demo's instructions and its tokens lie in files there. Production refuses demo "
            "data; give production a new KYSO_HOME and database (`kyso ca init`, then issue real credentials)",
            code="demo_data_in_production")
    loose = loose_files(settings)
    if loose:
        files = [str(f.path) for f in loose if not f.directory]
        folders = [str(f.path) for f in loose if f.directory]
        fix = "; ".join(cmd for cmd in (f"chmod 600 {' '.join(files)}" if files else "",
                                        f"chmod 700 {' '.join(folders)}" if folders else "") if cmd)
        raise ConfigurationError(
            "group or others may read or write " + ", ".join(map(str, loose)) + ": they hold personal data "
            "(specialists' names, ID numbers, PIN hashes) or keys, which only kyso's own user may read. "
            f"Production refuses to start; fix with: {fix}", code="files_not_private")
