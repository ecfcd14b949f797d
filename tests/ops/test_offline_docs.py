"""/docs (Swagger UI) and /redoc (ReDoc) render with the internet cut off, on the server `make run PORT=N`
starts: `kyso demo --port N` in a Python where the test extras cannot be imported (as after `make install`),
Debian's Chromium through Playwright, and every request that leaves 127.0.0.1 aborted and recorded."""
from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest

from tests.helpers.runtime import ROOT, without_test_extras
from tests.helpers.servers import free_port, stop_process, wait_healthy
from tests.helpers.web import chromium


class Demo:
    def __init__(self, port: int, proc: subprocess.Popen[bytes]) -> None:
        self.url, self.proc = f"http://127.0.0.1:{port}", proc


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    folder = tmp_path_factory.mktemp("docs")
    port = free_port()
    env = without_test_extras(folder / "block", KYSO_HOME=str(folder / "home"), KYSO_RUN_SCHEDULER="false")
    log = folder / "demo.log"
    with log.open("wb") as sink:
        proc = subprocess.Popen([sys.executable, "-m", "api.cli", "demo", "--port", str(port)], env=env, cwd=ROOT,
                                stdout=sink, stderr=subprocess.STDOUT)
    demo = Demo(port, proc)
    try:
        assert wait_healthy(demo.url, proc, 120), log.read_text(errors="replace")[-3000:]
        yield demo
    finally:
        stop_process(proc, 10)


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    with chromium("the offline /docs test") as launched:
        yield launched


@pytest.mark.parametrize(("path", "selector", "text"), [
    ("/docs", ".swagger-ui .info .title", "kyso"),  # Swagger UI drew the API's title
    ("/docs", ".swagger-ui .opblock-tag", "audit"),                    # and the operations, grouped by tag
    ("/redoc", "redoc h1", "kyso"),                                    # ReDoc drew the title
    ("/redoc", "redoc [role=menuitem], redoc label", "audit"),        # and its side menu
])
def test_api_docs_render_without_internet(server: Demo, browser, path: str, selector: str, text: str) -> None:
    local = urlsplit(server.url).netloc
    leaving: list[str] = []
    context = browser.new_context()  # type: ignore[attr-defined]
    page = context.new_page()

    def only_local(route) -> None:  # type: ignore[no-untyped-def]
        if urlsplit(route.request.url).netloc == local or route.request.url.startswith("data:"):
            route.continue_()
        else:
            leaving.append(route.request.url)
            route.abort("internetdisconnected")

    page.route("**/*", only_local)
    try:
        page.goto(server.url + path, wait_until="load")
        page.locator(selector).filter(has_text=text).first.wait_for(state="visible", timeout=30_000)
        scripts = page.evaluate("[...document.scripts].map(s => s.src).filter(Boolean)")
        assert scripts and all(urlsplit(src).netloc == local for src in scripts), scripts
        # nothing the page needs comes from outside (ReDoc's footer links its maker's logo: an image only)
        assert [url for url in leaving if "cdn.redoc.ly/redoc/logo" not in url] == [], leaving
    finally:
        context.close()


def test_assets_are_served_from_the_package(server: Demo) -> None:
    import httpx

    for asset, kind in (("swagger-ui-bundle.js", "javascript"), ("swagger-ui.css", "text/css"),
                        ("redoc.standalone.js", "javascript")):
        r = httpx.get(f"{server.url}/docs-assets/{asset}", timeout=30)
        assert r.status_code == 200 and kind in r.headers["content-type"] and len(r.content) > 100_000, asset
    html = httpx.get(server.url + "/docs", timeout=30).text
    assert "cdn.jsdelivr.net" not in html and "/docs-assets/swagger-ui-bundle.js" in html
    assert "fonts.googleapis.com" not in httpx.get(server.url + "/redoc", timeout=30).text
