"""`/api/v1/products` through the real app (TestClient) on SQLite and PostgreSQL: CRUD, listing,
brand isolation and the JSON error bodies."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from tests.catalog_fixtures import catalog_url, settings  # noqa: F401 (fixtures)

URL = "/api/v1/products"
TEE = dict(name="Organic tee", sku="TEE-1", price_minor=2500, currency="EUR", category="tops", kind="garment",
           size_chart={"S": {"chest_cm": 96}, "M": {"chest_cm": 104, "length_cm": 70}}, fabric="cotton_jersey",
           reference_body={"size": "M", "sex": "female"}, colourways=[{"name": "navy", "hex": "#1a2b3c"}])


def brand_key(app, name: str) -> dict:
    from assets.catalog import create_brand

    with app.state.db.session() as s:
        return {"Authorization": f"Bearer {create_brand(s, name)[1]}"}


@pytest.fixture
def api(settings):
    from streaming.api_app import create_app

    app = create_app(settings)
    with TestClient(app) as client:
        client.acme, client.bolt = brand_key(app, "Acme"), brand_key(app, "Bolt")
        yield client


def check_error(r, status: int, code: str | None = None) -> dict:
    assert r.status_code == status, r.text
    body = r.json()
    assert set(body) == {"error", "detail"} and body["detail"], body
    if code:
        assert body["error"] == code, body
    return body


def test_create_read_update_delete(api):
    r = api.post(URL, json=TEE, headers=api.acme)
    assert r.status_code == 201, r.text
    p = r.json()
    assert r.headers["location"] == f"{URL}/{p['id']}"
    assert (p["status"], p["brand_name"], p["fabric"], p["size_chart"]["M"]) == (
        "draft", "Acme", {"preset": "cotton_jersey"}, {"chest_cm": 104.0, "length_cm": 70.0})
    assert api.get(f"{URL}/{p['id']}", headers=api.acme).json()["sku"] == "TEE-1"
    r = api.patch(f"{URL}/{p['id']}", json={"price_minor": 1999, "status": "published"}, headers=api.acme)
    assert r.status_code == 200 and r.json()["price_minor"] == 1999 and r.json()["status"] == "published"
    assert api.get(f"{URL}/{p['id']}").status_code == 200  # published: anyone may read
    assert api.delete(f"{URL}/{p['id']}", headers=api.acme).status_code == 204
    check_error(api.get(f"{URL}/{p['id']}", headers=api.acme), 404, "no_product")


def test_brand_isolation(api):
    draft = api.post(URL, json=TEE, headers=api.acme).json()
    public = api.post(URL, json={**TEE, "sku": "TEE-2", "status": "published"}, headers=api.acme).json()
    # Another brand and anonymous shoppers do not see the draft, neither alone nor in lists.
    for headers in (api.bolt, {}):
        check_error(api.get(f"{URL}/{draft['id']}", headers=headers), 404, "no_product")
        listed = api.get(URL, headers=headers).json()
        assert [p["id"] for p in listed["data"]] == [public["id"]] and listed["count"] == 1
        assert api.get(URL, params={"status": "draft"}, headers=headers).json()["count"] == 0
    assert api.get(URL, headers=api.acme).json()["count"] == 2
    # Another brand can change or delete neither: 404 for the draft it cannot see, 403 for the published one.
    for pid, status, code in ((draft["id"], 404, "no_product"), (public["id"], 403, "forbidden")):
        check_error(api.patch(f"{URL}/{pid}", json={"name": "stolen"}, headers=api.bolt), status, code)
        check_error(api.delete(f"{URL}/{pid}", headers=api.bolt), status, code)
    assert api.get(f"{URL}/{public['id']}").json()["name"] == "Organic tee"
    assert api.get(f"{URL}/{draft['id']}", headers=api.acme).json()["name"] == "Organic tee"


def test_list_pages_filters_and_search(api):
    for i in range(12):
        kind = "furniture" if i % 3 == 0 else "garment"
        body = {**TEE, "sku": f"S{i}", "name": f"{'Oak chair' if kind == 'furniture' else 'Tee'} {i}", "kind": kind,
                "price_minor": 1000 * i, "status": "published", "category": "home" if kind == "furniture" else "tops"}
        if kind != "garment":
            body.update(size_chart=None, fabric=None, reference_body=None)
        assert api.post(URL, json=body, headers=api.acme if i % 2 else api.bolt).status_code == 201
    page = api.get(URL, params={"offset": 5, "limit": 5}).json()
    assert page["count"] == 12 and len(page["data"]) == 5
    assert api.get(URL, params={"kind": "furniture"}).json()["count"] == 4
    assert api.get(URL, params={"category": "home"}).json()["count"] == 4
    assert api.get(URL, params={"min_price": 3000, "max_price": 6000}).json()["count"] == 4
    assert api.get(URL, params={"q": "OAK"}).json()["count"] == 4
    acme_id = api.get(URL, headers=api.acme, params={"limit": 1, "q": "1"}).json()["data"][0]["brand_id"]
    assert api.get(URL, params={"brand_id": acme_id}).json()["count"] == 6
    check_error(api.get(URL, params={"limit": 1000}), 422, "invalid_request")
    check_error(api.get(URL, params={"kind": "spaceship"}), 422, "invalid_request")


def test_auth_errors(api):
    body = check_error(api.post(URL, json=TEE), 401, "unauthorized")
    assert "Bearer" in body["detail"]
    r = api.post(URL, json=TEE, headers={"Authorization": "Bearer fr_0123456789abcdef_wrong"})
    check_error(r, 401, "unauthorized")
    assert r.headers["www-authenticate"] == "Bearer"
    # A wrong key is refused even where no key is needed.
    check_error(api.get(URL, headers={"Authorization": "Bearer nonsense"}), 401, "unauthorized")


@pytest.mark.parametrize("change, field", [
    ({"kind": "furniture"}, "garments only"),
    ({"fabric": "wool"}, "Unknown fabric"),
    ({"price_minor": "cheap"}, "price_minor"),
    ({"currency": "EURO"}, "currency"),
    ({"sku": ""}, "sku"),
    ({"size_chart": {"M": {"chest_cm": 0}}}, "size_chart.M.chest_cm"),
    ({"reference_body": {"size": "M", "sex": "other"}}, "reference_body"),
    ({"colour": "red"}, "colour"),  # unknown fields are refused, not dropped
])
def test_bad_metadata_is_422_naming_the_field(api, change, field):
    body = check_error(api.post(URL, json={**TEE, **change}, headers=api.acme), 422, "invalid_request")
    assert field in body["detail"]
    assert api.get(URL, headers=api.acme).json()["count"] == 0


def test_duplicate_sku_and_bad_patch(api):
    p = api.post(URL, json=TEE, headers=api.acme).json()
    check_error(api.post(URL, json=TEE, headers=api.acme), 409, "duplicate_sku")
    assert api.post(URL, json=TEE, headers=api.bolt).status_code == 201  # SKUs are per brand
    body = check_error(api.patch(f"{URL}/{p['id']}", json={"kind": "furniture", "fabric": "denim"}, headers=api.acme), 422)
    assert "garments only" in body["detail"]
    check_error(api.patch(f"{URL}/{p['id']}", json={"reference_body": {"asset_id": 999}}, headers=api.acme), 422,
                "bad_reference_body")
    check_error(api.get(f"{URL}/not-a-number"), 422, "invalid_request")
    check_error(api.get("/api/v1/nothing-here"), 404, "not_found")
    check_error(api.put(f"{URL}/{p['id']}", json=TEE, headers=api.acme), 405)


def test_openapi_docs(api):
    assert api.get("/docs").status_code == 200
    paths = api.get("/openapi.json").json()["paths"]
    assert {"/api/v1/products", "/api/v1/products/{product_id}", "/api/v1/products/{product_id}/assets",
            "/api/v1/uploads/{job_id}", "/api/v1/assets/{asset_id}/files/{name}"} <= set(paths)
