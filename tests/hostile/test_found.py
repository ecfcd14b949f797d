"""The failing examples the hostile-input runs found, kept as plain regression tests (each was a 500, a
503 for the caller's own mistake, or an answer in the wrong shape)."""
from __future__ import annotations

import pytest

from tests.helpers.hostile import Kyso, assert_refused_clearly


@pytest.mark.parametrize("content_type", ["application/json; charset=bogus-x", "application/json; charset=utf-99"])
def test_csc_body_fastapi_cannot_decode_is_answered_in_the_csc_shape(kyso: Kyso, content_type: str) -> None:
    """FastAPI's own HTTPException ("There was an error parsing the body") escaped CscRoute in kyso's shape."""
    response = kyso.client.post("/csc/v2/credentials/list", content=b"\xff\xfe{",
                                headers={**kyso.headers["client"], "Content-Type": content_type})
    assert response.status_code == 400, response.text
    assert response.json()["error"] == "invalid_request" and response.json()["error_description"]


@pytest.mark.parametrize("path, body", [
    ("/api/v1/certificates", {"subject": {"common_name": "Trần Văn Hùng"}, "keystore": "\r\U0007022c&"}),
    ("/api/v1/certificates", {"subject": {"common_name": "Trần Văn Hùng"}, "keystore": "pkcs11"}),
    ("/api/v1/registrations", {"subject": {"common_name": "Trần Văn Hùng"}, "keystore": "vault"}),
])
def test_a_keystore_that_is_not_configured_is_the_callers_mistake(kyso: Kyso, path: str, body: dict) -> None:
    """Was 503 keystore_misconfigured (a server fault, retried by clients) for a name the caller made up."""
    error = assert_refused_clearly(kyso.client.post(path, json=body, headers=kyso.headers["ca-operator"]), 422)
    assert error["code"] == "unknown_keystore" and "soft" in error["message"], error


def test_every_error_an_operation_gives_is_declared_in_its_schema(kyso: Kyso) -> None:
    """The OpenAPI document declares kyso's error shape (not FastAPI's HTTPValidationError, which kyso never
    sends) for the statuses the routes answer with; CSC routes declare the CSC shape and no 422."""
    schema = kyso.client.get("/openapi.json").json()
    certificates = schema["paths"]["/api/v1/certificates"]["post"]["responses"]
    assert certificates["422"]["content"]["application/json"]["schema"]["$ref"].endswith("/ErrorOut")
    assert {"401", "403", "404", "409", "503"} <= set(certificates)
    sign_doc = schema["paths"]["/csc/v2/signatures/signDoc"]["post"]["responses"]
    assert "422" not in sign_doc and sign_doc["4XX"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "/CscErrorOut")
    assert "application/ocsp-request" in schema["paths"]["/ocsp"]["post"]["requestBody"]["content"]
    assert "application/pdf" in schema["paths"]["/api/v1/verify"]["post"]["requestBody"]["content"]


@pytest.mark.parametrize("url", [
    "/api/v1/certificates?offset=100000000000000000000",
    "/api/v1/documents?offset=100000000000000000000",
    "/api/v1/documents/DOC-X/file?version=100000000000000000000",
])
def test_huge_integers_in_queries_are_refused_not_sent_to_the_database(kyso: Kyso, url: str) -> None:
    """Was a 500: "Python int too large to convert to SQLite INTEGER" (PostgreSQL: out of range for bigint)."""
    response = kyso.client.get(url, headers=kyso.headers["ca-operator"])
    assert_refused_clearly(response, 422)


def test_a_stamp_box_that_is_not_a_number_is_a_metadata_error(kyso: Kyso) -> None:
    """Was 422 "the PDF is damaged in a way kyso cannot sign through (ValueError: cannot convert float NaN
    to integer)": right status, wrong culprit. NaN and infinity come through Python's JSON parser."""
    from tests.helpers.signing import CORPUS

    pdf = (CORPUS / "fourpages.pdf").read_bytes()
    response = kyso.sign(pdf, visible=True, authorize=False, appearance={"visible": True, "box": [float("nan"), 0, 100, 100]})
    error = assert_refused_clearly(response, 422)
    assert error["code"] == "invalid_metadata" and "box" in error["message"], error
