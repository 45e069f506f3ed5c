"""Trying on catalogue garments through the real app: a brand uploads a garment GLB with a size
chart, fabric, colourways and reference body M, publishes it, and a shopper's session drapes it from
the processed lod0 (real upload job, real drape); and the products that cannot be tried on."""

from __future__ import annotations

import time

import numpy as np
import pytest
from fastapi.testclient import TestClient

from assets.catalog_tryon import NO_HEX
from fitroom.settings import Settings
from streaming.tryon_sessions import colourway_rgb
from tests.streaming.test_api_products import brand_key, check_error
from tests.streaming.tryon_fixtures import STREAM

PRODUCTS = "/api/v1/products"
TRYON = "/api/v1/tryon"


@pytest.fixture(scope="module")
def skirt(body_model_cpu):
    """A procedural skirt (about 1500 vertices) made on the female M reference body, as GLB bytes, and its girths."""
    from assets.procedural_garments import procedural_garment
    from avatar.glb_export import body_glb_bytes

    g = procedural_garment(body_model_cpu, "skirt", "M", "female", target_vertices=1500)
    return body_glb_bytes(np.asarray(g.vertices, np.float32), np.asarray(g.faces, np.int32), name="skirt"), g.girths_cm


STRIPES = ((200, 30, 30), (30, 60, 200))  # the textured skirt's red and blue bands, sRGB


@pytest.fixture(scope="module")
def textured_skirt(body_model_cpu):
    """The skirt with texture coordinates, a texture of horizontal red and blue bands, a normal map
    and a roughness factor, as GLB bytes (trimesh's exporter, as a brand's tool would write it)."""
    import io

    import trimesh
    from PIL import Image
    from trimesh.visual.material import PBRMaterial

    from assets.procedural_garments import procedural_garment

    g = procedural_garment(body_model_cpu, "skirt", "M", "female", target_vertices=1500)
    v = g.vertices
    uv = np.stack([np.arctan2(v[:, 0], v[:, 2]) / (2 * np.pi) + 0.5, (v[:, 1] - v[:, 1].min()) / np.ptp(v[:, 1])], 1)
    bands = np.array(STRIPES, np.uint8)[(np.arange(64) // 8) % 2]  # 8 bands over the skirt's height
    texture = Image.fromarray(np.repeat(bands[:, None, :], 64, axis=1))
    normal_map = Image.fromarray(np.full((16, 16, 3), (128, 128, 255), np.uint8))
    material = PBRMaterial(baseColorTexture=texture, normalTexture=normal_map, roughnessFactor=0.7, metallicFactor=0.0)
    mesh = trimesh.Trimesh(v, g.faces, visual=trimesh.visual.TextureVisuals(uv=uv, material=material), process=False)
    buf = io.BytesIO()
    mesh.export(buf, file_type="glb")
    return buf.getvalue(), g.girths_cm


def skirt_product(girths: dict, **changes) -> dict:
    w, h = round(girths["waist"], 1), round(girths["hip"], 1)
    chart = {s: {"waist_cm": w + d, "hip_cm": h + d, "length_cm": 60.0} for s, d in (("S", -6.0), ("M", 0.0), ("L", 6.0))}
    return {"name": "Pleated skirt", "sku": "SK-1", "price_minor": 4900, "currency": "EUR", "category": "skirts",
            "kind": "garment", "size_chart": chart, "fabric": "denim", "reference_body": {"size": "M", "sex": "female"},
            "colourways": [{"name": "ochre", "hex": "#c8902e"}, {"name": "ink"}], **changes}


@pytest.fixture(scope="module")
def shop(tmp_path_factory, body_model_cpu):
    from streaming.api_app import create_app

    app = create_app(Settings(data_dir=tmp_path_factory.mktemp("tryon_catalog") / "data", **STREAM))
    app.state.tryon.registry.model = body_model_cpu
    with TestClient(app) as client:
        client.acme, client.bolt = brand_key(app, "Acme"), brand_key(app, "Bolt")
        yield client
    assert not app.state.tryon.registry.sessions()


def add_product(shop, data: dict, glb: bytes | None = None, sizes=(None,)) -> int:
    """A product of Acme with a ready model per size in `sizes` (None: one unsized model); no model without `glb`."""
    r = shop.post(PRODUCTS, json=data, headers=shop.acme)
    assert r.status_code == 201, r.text
    pid = r.json()["id"]
    for size in sizes if glb else ():
        form = {"size": size} if size else {}
        r = shop.post(f"{PRODUCTS}/{pid}/assets", files={"file": ("skirt.glb", glb, "model/gltf-binary")}, data=form,
                      headers=shop.acme)
        assert r.status_code == 202, r.text
        shop.app.state.jobs.wait(60)
        assert shop.get(r.json()["status_url"], headers=shop.acme).json()["status"] == "ready"
    return pid


def wait_ready(shop, doc: dict, drapes: int = 1) -> dict:
    deadline = time.monotonic() + 60
    while not (doc["status"] == "failed" or (doc["status"] == "ready" and doc["drapes"] >= drapes)):
        assert time.monotonic() < deadline, doc
        time.sleep(0.1)
        doc = shop.get(f"{TRYON}/{doc['id']}").json()
    return doc


def close(shop, doc: dict) -> None:
    registry = shop.app.state.tryon.registry
    registry.close(registry.get(doc["id"]))


def test_a_published_catalogue_garment_drapes_with_its_chart_fabric_and_colourways(shop, skirt):
    glb, girths = skirt
    pid = add_product(shop, skirt_product(girths, status="published"), glb)
    options = shop.get(f"{TRYON}/options").json()
    listed = {g["id"]: g for g in options["garments"]}
    assert "skirt" in listed and listed[f"product:{pid}"]["sizes"] == ["S", "M", "L"]
    assert [c["name"] for c in listed[f"product:{pid}"]["colourways"]] == ["ochre", "ink"]

    r = shop.post(TRYON, json={"avatar": {"sex": "female", "size": "M"}, "garment": {"product_id": pid}})
    assert r.status_code == 202, r.text
    doc = r.json()
    # The product's defaults: the reference body's size, its first colourway and its fabric.
    assert (doc["garment"], doc["size"], doc["colourway"], doc["fabric"]) == (f"product:{pid}", "M", "ochre", "denim")
    assert doc["product"]["name"] == "Pleated skirt" and "one 3D model for every size" in doc["note"]
    doc = wait_ready(shop, doc)
    assert doc["status"] == "ready", doc
    assert doc["fit"]["vertices"] > 1000 and isinstance(doc["fit"]["fits"], bool)
    assert doc["fit"]["max_penetration_mm"] < 5.0 and set(doc["fit"]["ease_cm"]) >= {"hip"}
    # Size advice from the brand's chart: all three sizes ranked, M (made on the M body) first.
    assert sorted(a.split(":")[0] for a in doc["size_advice"]) == ["L", "M", "S"]
    assert doc["recommended_size"] == "M", doc["size_advice"]

    hub = shop.app.state.tryon
    session = hub.registry.get(doc["id"])
    hub.registry.change(session, size="l", colourway="ink")  # the chart's label, whatever the case
    doc = wait_ready(shop, shop.get(f"{TRYON}/{doc['id']}").json(), drapes=2)
    assert (doc["status"], doc["size"], doc["colourway"]) == ("ready", "L", "ink") and "size L" in doc["note"]
    assert session.colour == pytest.approx(colourway_rgb(NO_HEX))  # "ink" has no hex: neutral grey
    look = shop.get(f"{TRYON}/{doc['id']}/look.glb")
    assert look.status_code == 200 and look.content[:4] == b"glTF"
    check_error(shop.post(TRYON, json={"garment": {"product_id": pid}, "size": "XXL"}), 422, "bad_size")
    close(shop, doc)


def test_a_textured_garment_is_shown_and_exported_with_its_maps(shop, textured_skirt):
    """The brand's texture, normal map and roughness reach the live picture and look.glb: the
    session draws the garment on its own vertices with their texture coordinates."""
    import json
    import struct

    glb, girths = textured_skirt
    pid = add_product(shop, skirt_product(girths, sku="SK-T", status="published"), glb)
    r = shop.post(TRYON, json={"avatar": {"sex": "female", "size": "M"}, "garment": {"product_id": pid}})
    doc = wait_ready(shop, r.json())
    assert doc["status"] == "ready", doc
    session = shop.app.state.tryon.registry.get(doc["id"])
    assert session.look.garment.material is not None
    frame = session.call_render(lambda fs: fs.frame()).result(timeout=30).astype(int)
    red = (frame[..., 0] > 2 * frame[..., 2]) & (frame[..., 0] > 90)
    blue = (frame[..., 2] > 2 * frame[..., 0]) & (frame[..., 2] > 90)
    assert red.sum() > 500 and blue.sum() > 500, (red.sum(), blue.sum())  # both bands, not one colourway

    look = shop.get(f"{TRYON}/{doc['id']}/look.glb").content
    from assets.khronos_validator import validate_many

    report, = validate_many([look])
    assert report.num_errors == 0, report.errors
    gltf = json.loads(look[20:20 + struct.unpack("<I", look[12:16])[0]])
    attributes = [p["attributes"] for m in gltf["meshes"] for p in m["primitives"]]
    assert sum("TEXCOORD_0" in a for a in attributes) == 1  # the garment's, not the body's
    textured = [m for m in gltf["materials"] if "baseColorTexture" in m.get("pbrMetallicRoughness", {})]
    assert len(textured) == 1 and "normalTexture" in textured[0]
    assert textured[0]["pbrMetallicRoughness"].get("roughnessFactor") == pytest.approx(0.7)
    close(shop, doc)


def test_per_size_models_drape_their_own_size_and_drafts_need_their_brands_key(shop, skirt):
    glb, girths = skirt
    pid = add_product(shop, skirt_product(girths, sku="SK-2"), glb, sizes=("S", "M"))  # a draft
    body = {"garment": {"product_id": pid}, "size": "S"}
    check_error(shop.post(TRYON, json=body), 404, "no_product")
    check_error(shop.post(TRYON, json=body, headers=shop.bolt), 404, "no_product")
    r = shop.post(TRYON, json=body, headers=shop.acme)
    assert r.status_code == 202, r.text
    doc = r.json()
    assert doc["size"] == "S" and doc["note"] is None and doc["product"]["sizes"] == ["S", "M"]
    close(shop, doc)
    body = check_error(shop.post(TRYON, json={**body, "size": "L"}, headers=shop.acme), 422, "bad_size")
    assert "S, M" in body["detail"]  # L is in the chart but has no model
    assert f"product:{pid}" not in {g["id"] for g in shop.get(f"{TRYON}/options").json()["garments"]}


def test_products_that_cannot_be_tried_on_are_refused_with_a_reason(shop, skirt):
    from assets.catalog_models import Product

    glb, girths = skirt
    vase = {"name": "Vase", "sku": "V-1", "price_minor": 900, "currency": "EUR", "category": "home", "kind": "other",
            "status": "published"}
    cases = {
        "vase": (add_product(shop, vase, glb), 422, "not_a_garment", "not a garment"),
        "no model": (add_product(shop, skirt_product(girths, sku="SK-3", status="published")), 409, "no_tryon_model",
                     "no ready 3D model"),
        "body not uploaded": (add_product(shop, skirt_product(girths, sku="SK-4", status="published"), glb), 422,
                              "no_reference_body", "not a ready reference_body asset"),
        "unknown": (999_999, 404, "no_product", "999999"),
    }
    with shop.app.state.db.session() as s:  # asset 1 is a garment model, not a body mesh of this product
        s.get(Product, cases["body not uploaded"][0]).reference_body = {"asset_id": 1}
        s.commit()
    for name, (pid, status, code, words) in cases.items():
        body = check_error(shop.post(TRYON, json={"garment": {"product_id": pid}}), status, code)
        assert words in body["detail"], (name, body)
    check_error(shop.post(TRYON, json={"garment": {"product_id": "x"}}), 422, "invalid_request")
    check_error(shop.post(TRYON, json={"garment": {"sku": "SK-1"}}), 422, "invalid_request")
    listed = {g["id"] for g in shop.get(f"{TRYON}/options").json()["garments"]}
    assert not listed & {f"product:{cases[k][0]}" for k in ("vase", "no model", "body not uploaded")}


def test_a_garment_modelled_on_the_brands_own_body_mesh_drapes(shop, skirt, body_model_cpu):
    """The brand uploads its body mesh (another topology: fitroom's M body remeshed) with role
    reference_body, names it as the product's reference body, and the skirt made on it drapes on a
    shopper: the body model is registered to the processed mesh and carries the skirt."""
    from assets.procedural_garments import reference_body
    from avatar.glb_export import body_glb_bytes
    from tests.engine.test_body_registration import remesh

    glb, girths = skirt
    _, body = reference_body(body_model_cpu, "M", "female")
    v, f = remesh(np.asarray(body), np.asarray(body_model_cpu.faces), n_vertices=8000)
    body_glb = body_glb_bytes(v.astype(np.float32), f.astype(np.int32), name="brand body")
    data = skirt_product(girths, sku="SK-9", status="published")
    del data["reference_body"]
    pid = add_product(shop, data, glb)
    r = shop.post(f"{PRODUCTS}/{pid}/assets", files={"file": ("body.glb", body_glb, "model/gltf-binary")},
                  data={"role": "reference_body"}, headers=shop.acme)
    assert r.status_code == 202, r.text
    shop.app.state.jobs.wait(60)
    status = shop.get(r.json()["status_url"], headers=shop.acme).json()
    assert status["status"] == "ready", status
    body_id = status["asset"]["id"]
    r = shop.patch(f"{PRODUCTS}/{pid}", json={"reference_body": {"asset_id": body_id}}, headers=shop.acme)
    assert r.status_code == 200, r.text
    r = shop.post(TRYON, json={"garment": {"product_id": pid}, "size": "M", "avatar": {"sex": "female", "size": "L"}})
    assert r.status_code == 202, r.text
    doc = wait_ready(shop, r.json())
    assert doc["status"] == "ready", doc
    assert doc["product"]["reference_body"] == {"asset_id": body_id, "size": None, "sex": None}
    fit = doc["fit"]
    # as from fitroom's own M body on this avatar (strain p95 108.9 %, hip ease 1.4 cm); a body mesh moved
    # off the skirt's frame (processed like furniture: re-centred) gave 142 % and 8.2 cm
    assert fit["vertices"] > 1000 and fit["max_penetration_mm"] < 5.0 and fit["strain_p95"] < 115, fit
    assert 0.0 < fit["ease_cm"]["hip"] < 4.0, fit
    assert "the brand's body" in doc["note"] and doc["recommended_size"] in ("M", "L"), doc["size_advice"]
    close(shop, doc)
