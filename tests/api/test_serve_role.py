"""`kyso serve --role ocsp|api|all` (issue 19 item 4): an OCSP node serves only the protocol lane (OCSP, CRLs,
time-stamps, CA certificates) and the probes; an API node everything but that lane; a route outside the role
answers 404 (it is not there: not in /openapi.json either)."""
from __future__ import annotations

import dataclasses
import subprocess
import sys

from fastapi.testclient import TestClient

from api.app import create_app
from api.container import Container
from api.middleware import serves
from tests.helpers.runtime import ROOT

LANE = [("GET", "/ca/test-issuing.crt"), ("GET", "/crl/test-issuing.crl"), ("GET", "/crl/test-issuing-delta.crl"),
        ("POST", "/ocsp"), ("GET", "/ocsp/MAA="), ("POST", "/tsa")]
API = [("GET", "/api/v1/units"), ("POST", "/api/v1/verify"), ("GET", "/v"), ("GET", "/v/sw.js"), ("GET", "/openapi.json"),
       ("GET", "/me"), ("POST", "/csc/v2/info"), ("GET", "/docs")]
PROBES = [("GET", "/healthz"), ("GET", "/metrics")]


def _client(pki: Container, role: str) -> TestClient:
    settings = pki.settings.model_copy(update={"serve_role": role})
    return TestClient(create_app(dataclasses.replace(pki, settings=settings), scheduler=False))


def test_an_ocsp_node_serves_the_protocol_lane_and_the_probes_only(pki: Container) -> None:
    with _client(pki, "ocsp") as client:
        for method, path in LANE + PROBES:
            assert client.request(method, path).status_code != 404, path
        assert client.get("/ca/test-issuing.crt").headers["content-type"] == "application/pkix-cert"
        assert client.get("/crl/test-issuing.crl").status_code == 200
        for method, path in API:
            assert client.request(method, path).status_code == 404, path
        r = client.get("/api/v1/units")  # on the probes' router, kept off by the role
        assert r.json()["error"]["code"] == "http_404" and "role ocsp" in r.json()["error"]["message"]


def test_an_api_node_serves_everything_but_the_protocol_lane(pki: Container) -> None:
    with _client(pki, "api") as client:
        for method, path in LANE:
            assert client.request(method, path).status_code == 404, path
        for method, path in API + PROBES:
            assert client.request(method, path).status_code != 404, path
        paths = client.get("/openapi.json").json()["paths"]
        assert "/api/v1/verify" in paths and "/ocsp" not in paths and "/tsa" not in paths


def test_all_serves_both() -> None:
    for method, path in LANE + API + PROBES:
        del method
        assert serves("all", path)
    assert serves("ocsp", "/ocsp/MFYw") and not serves("ocsp", "/ocspx") and not serves("api", "/crl/x.crl")


def test_serve_refuses_an_unknown_role() -> None:
    r = subprocess.run([sys.executable, "-m", "api.cli", "serve", "--role", "signing", "--port", "1"],
                       cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "--role is all, ocsp or api" in r.stderr + r.stdout
