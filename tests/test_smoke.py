

def test_issue_over_api(client, operator_headers):
    body = {"profile": "specialist", "commune_code": "00004",
            "subject": {"common_name": "Nguyễn Thị Hoa", "id_number": "001190000001"}}
    r = client.post("/api/v1/certificates", json=body, headers=operator_headers)
    assert r.status_code == 201, r.text
    assert r.json()["credential_id"].startswith("cred_")
