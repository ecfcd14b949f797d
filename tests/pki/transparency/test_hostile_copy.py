"""``kyso log verify --url`` against a hostile server: it must neither hang nor fill the memory."""
from __future__ import annotations

import http.server
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from pki.transparency import client
from pki.transparency.errors import LogVerificationError


class Hostile(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        self.send_response(200)
        if self.path.endswith("/huge/checkpoint"):  # 64 MiB, honestly announced
            self.send_header("Content-Length", str(64 << 20))
            self.end_headers()
            chunk = b"x" * (1 << 20)
            for _ in range(64):
                self.wfile.write(chunk)
        elif self.path.endswith("/unannounced/checkpoint"):  # no length: streamed until the client gives up
            self.end_headers()
            chunk = b"x" * (1 << 16)
            for _ in range(1024):
                self.wfile.write(chunk)
        elif self.path.endswith("/drip/checkpoint"):  # a byte at a time, each well within the read timeout
            self.end_headers()
            for _ in range(10_000):
                self.wfile.write(b"x")
                self.wfile.flush()
                time.sleep(0.05)
        elif self.path.endswith("/fat-tile/tile/0/000.p/1"):  # 32 bytes expected
            self.send_header("Content-Length", "33")
            self.end_headers()
            self.wfile.write(b"y" * 33)


class QuietServer(http.server.ThreadingHTTPServer):
    def handle_error(self, request: object, client_address: object) -> None:
        pass  # the client hanging up on a 64 MiB answer is the point of the test


@pytest.fixture
def hostile() -> Iterator[str]:
    server = QuietServer(("127.0.0.1", 0), Hostile)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize("where", ["huge", "unannounced", "fat-tile"])
def test_oversized_files_are_refused_before_they_fill_memory(hostile: str, where: str) -> None:
    path = "tile/0/000.p/1" if where == "fat-tile" else "checkpoint"
    with client.http_fetch(f"{hostile}/{where}") as fetch, pytest.raises(LogVerificationError, match="larger than"):
        fetch(path)


def test_a_dripping_server_is_cut_off(hostile: str) -> None:
    """Before: urllib's 30 s timeout is per read, so a byte every 29 s kept ``kyso log verify`` waiting forever."""
    with client.http_fetch(f"{hostile}/drip", timeout=5, deadline=1) as fetch, \
            pytest.raises(LogVerificationError, match="took more than"):
        fetch("checkpoint")


def test_a_copy_on_disk_is_bounded_too(tmp_path: Path) -> None:
    (tmp_path / "tile" / "0").mkdir(parents=True)
    (tmp_path / "tile" / "0" / "000.p").mkdir()
    (tmp_path / "tile" / "0" / "000.p" / "2").write_bytes(b"z" * 65)
    fetch = client.directory_fetch(tmp_path)
    with pytest.raises(LogVerificationError, match="larger than"):
        fetch("tile/0/000.p/2")
    assert fetch("checkpoint") is None
    assert client.fetch_limit("tile/entries/000") == 256 * (2 + 65535)
    assert client.fetch_limit("tile/1/000.p/3") == 96
