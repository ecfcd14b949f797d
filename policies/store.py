"""The policy in force, reloadable without a restart.

The file is looked at again (its modification time) at most every ``CHECK_SECONDS``; an explicit
``reload()`` (``POST /api/v1/policies/reload``, ``kyso policy reload``) does it at once. A file that
does not parse or validate is refused with its line and reason, and the policy in force stays: a
typo in production never leaves kyso without a policy, nor with half of one.
"""
from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .documents import DOCUMENTS_FILE, DocumentPolicy, load
from .errors import PolicyInvalid

log = logging.getLogger(__name__)
CHECK_SECONDS = 2.0


@dataclass(frozen=True)
class PolicyStatus:
    version: str
    path: str
    loaded_at: dt.datetime
    last_error: str | None


class PolicyStore:
    def __init__(self, path: Path = DOCUMENTS_FILE, *,
                 on_load: Callable[[DocumentPolicy], None] | None = None) -> None:
        self.path = path
        self._on_load = on_load
        self._lock = threading.Lock()
        self._policy = load(path)  # at start a bad file is fatal: there is no older policy to keep
        self._mtime = self._stat()
        self._checked = time.monotonic()
        self._loaded_at = dt.datetime.now(dt.UTC)
        self._last_error: str | None = None
        if on_load:
            on_load(self._policy)

    def _stat(self) -> float | None:
        try:
            return self.path.stat().st_mtime
        except OSError:
            return None

    @property
    def current(self) -> DocumentPolicy:
        if time.monotonic() - self._checked >= CHECK_SECONDS:
            self._checked = time.monotonic()
            if self._stat() != self._mtime:
                try:
                    self.reload()
                except PolicyInvalid as exc:
                    log.error("policy file changed but was refused, the policy in force stays %s: %s",
                              self._policy.version, exc.message)
        return self._policy

    def reload(self) -> DocumentPolicy:
        """Read the file now; on error raise ``PolicyInvalid`` (line and reason) and keep the old policy."""
        with self._lock:
            mtime = self._stat()
            try:
                policy = load(self.path)
            except PolicyInvalid as exc:
                self._mtime = mtime  # do not retry the same broken file every few seconds
                self._last_error = exc.message
                raise
            if self._on_load:
                self._on_load(policy)
            changed = policy.version != self._policy.version
            self._policy, self._mtime, self._last_error = policy, mtime, None
            if changed:
                self._loaded_at = dt.datetime.now(dt.UTC)
                log.warning("policy %s now in force", policy.version)
            return policy

    def status(self) -> PolicyStatus:
        return PolicyStatus(self._policy.version, str(self.path), self._loaded_at, self._last_error)
