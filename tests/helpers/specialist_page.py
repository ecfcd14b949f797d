"""Driving the specialist's page /me from tests: submit a signing request, sign in, read the forms."""
from __future__ import annotations

import json
import re

from fastapi.testclient import TestClient

from tests.helpers.activation import PIN


def submit(client: TestClient, headers: dict[str, str], pdfs: list[bytes], defaults: dict,
           items: list[dict] | None = None, note: str | None = None):  # type: ignore[no-untyped-def]
    files = [("files", (f"hs-{i}.pdf", pdf, "application/pdf")) for i, pdf in enumerate(pdfs)]
    data = {"metadata": json.dumps({"defaults": defaults, "items": items or []})}
    if note:
        data["note"] = note
    return client.post("/api/v1/sign/requests", files=files, data=data, headers=headers)


CCCD = "001190000001"  # the specialist fixture's id_number: she signs in with it


def login(client: TestClient, identifier: str, otp: str | None, pin: str = PIN):  # type: ignore[no-untyped-def]
    """Sign in the way a browser does: the signed-out page first (its form's CSRF token), then the form."""
    form = csrf(client.get("/me").text)
    return client.post("/me/login", data={"identifier": identifier, "pin": pin, "otp": otp or "", "csrf": form},
                       follow_redirects=False)


def csrf(page: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', page)
    assert found, "the page carries a CSRF token in its forms"
    return found.group(1)


def request_page(client: TestClient, request_id: str, lang: str = "vi") -> str:
    r = client.get(f"/me/requests/{request_id}?lang={lang}")
    assert r.status_code == 200, r.text
    return r.text


def seen(client: TestClient, request_id: str) -> dict[str, str]:
    """What the approval form on the request's page adds to PIN and code: the box ticked, the hashes of the
    documents shown, the CSRF token."""
    page = request_page(client, request_id)
    form = page[page.index(f'action="/me/requests/{request_id}/approve'):]
    found = re.search(r'name="documents" value="([0-9a-f,]+)"', form)
    assert found, "the approval form names the documents shown"
    return {"seen": "yes", "documents": found.group(1), "csrf": csrf(page)}
