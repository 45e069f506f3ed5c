"""Brand uploads and the catalogue (issue 4), through the real API in one process (FastAPI's TestClient).

1. Upload to ready: a generated 100k-triangle textured GLB (2048 px JPEG texture, the sample
   vase of tests/assets/sample_models.py) is POSTed to `/api/v1/products/{id}/assets`; the clock
   runs from the request until the job is `ready` (open, check, normalise, three LODs, textures,
   GLBs, USDZ, thumbnail, blobs and rows). One warm-up run (imports, the EGL context), then
   `--runs` timed runs, each on a fresh product deleted afterwards so every blob is written anew.
   Target: median <= 3 s.
2. Listing: 10,000 published products of 10 brands in SQLite (inserted in bulk), then `GET
   /api/v1/products` pages of 20 through the API, anonymous and as a brand, with and without
   filters, search and deep offsets. Target: p95 <= 20 ms. The repository call alone is timed too.

    .venv/bin/python bench/assets.py [--runs 5] [--requests 300]

Prints JSON and writes bench/results/assets.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from drape_quality import _cpu_name  # noqa: E402  (bench/ is on the path when this runs as a script)

PRODUCTS = "/api/v1/products"


def _p(values, q) -> float:
    return round(float(np.percentile(values, q)) * 1000, 2)


def upload_to_ready(client, headers, glb: bytes, runs: int) -> dict:
    meta = dict(name="Vase", price_minor=4900, currency="EUR", category="home", kind="other")
    seconds, stages = [], None
    for i in range(runs + 1):
        pid = client.post(PRODUCTS, json={**meta, "sku": f"VASE-{i}"}, headers=headers).json()["id"]
        start = time.perf_counter()
        r = client.post(f"{PRODUCTS}/{pid}/assets", files={"file": ("vase.glb", glb, "model/gltf-binary")}, headers=headers)
        client.app.state.jobs.wait()
        status = client.get(r.json()["status_url"], headers=headers).json()
        elapsed = time.perf_counter() - start
        if status["status"] != "ready":
            raise SystemExit(f"the upload did not go to ready: {status}")
        if i:
            seconds.append(elapsed)
        else:
            warmup = elapsed
        stages = {f["name"]: f.get("triangles") or f["size_bytes"] for f in status["asset"]["files"]}
        client.delete(f"{PRODUCTS}/{pid}", headers=headers)
    return {"seconds_median": round(statistics.median(seconds), 3), "seconds": [round(s, 3) for s in seconds],
            "warmup_seconds": round(warmup, 3), "outputs (triangles or bytes)": stages,
            "target_seconds": 3.0, "meets_target": statistics.median(seconds) <= 3.0}


def fill_catalogue(db, n: int) -> list[str]:
    from assets.catalog import create_brand
    from assets.catalog_models import Product

    kinds = ["garment", "footwear", "accessory", "furniture", "other"]
    rng = np.random.default_rng(4)
    keys = []
    with db.session() as s:
        brands = []
        for b in range(10):
            brand, key = create_brand(s, f"Brand {b}")
            brands.append(brand)
            keys.append(key)
        rows = [dict(brand_id=brands[i % 10].id, name=f"{['Linen', 'Oak', 'Wool', 'Silk'][i % 4]} item {i}", sku=f"SKU-{i}",
                     price_minor=int(rng.integers(500, 50000)), currency="EUR", category=["tops", "home", "shoes"][i % 3],
                     description="", kind=kinds[i % 5], status="published" if i % 10 else "draft", colourways=[])
                for i in range(n)]
        s.execute(Product.__table__.insert(), rows)
        s.commit()
    return keys


def listing(client, db, keys, requests: int) -> dict:
    from assets import catalog

    queries = [{}, {"offset": 9000}, {"kind": "furniture"}, {"category": "home", "min_price": 1000, "max_price": 20000},
               {"q": "oak"}, {"brand_id": 3}]
    auth = {"Authorization": f"Bearer {keys[0]}"}
    for params in queries:  # warm-up: the first requests pay for imports and SQLite's page cache
        client.get(PRODUCTS, params=params)
    api, direct = [], []
    for i in range(requests):
        params = {**queries[i % len(queries)], "limit": 20}
        headers = auth if i % 2 else {}
        start = time.perf_counter()
        r = client.get(PRODUCTS, params=params, headers=headers)
        api.append(time.perf_counter() - start)
        assert r.status_code == 200 and r.json()["data"], r.text
    for i in range(requests):
        params = {**queries[i % len(queries)], "limit": 20}
        with db.session() as s:
            start = time.perf_counter()
            catalog.list_products(s, None, **params)
            direct.append(time.perf_counter() - start)
    return {"products": 10_000, "page": 20, "requests": requests, "through": "the API (TestClient, in process)",
            "api_ms_p50": _p(api, 50), "api_ms_p95": _p(api, 95), "repository_ms_p50": _p(direct, 50),
            "repository_ms_p95": _p(direct, 95), "target_ms_p95": 20.0, "meets_target": _p(api, 95) <= 20.0}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--requests", type=int, default=300)
    args = ap.parse_args()

    from fastapi.testclient import TestClient

    from assets.catalog import create_brand
    from fitroom.settings import Settings
    from streaming.api_app import create_app
    from tests.assets.sample_models import textured_glb

    out = {"device": f"CPU: {_cpu_name()}", "database": "SQLite (WAL) in a temporary data directory"}
    with tempfile.TemporaryDirectory(prefix="fitroom-bench-") as tmp:
        tmp = Path(tmp)
        glb = textured_glb(tmp / "vase.glb", n_triangles=100_000, texture_px=2048).read_bytes()
        app = create_app(Settings(data_dir=tmp / "upload-data"))
        with TestClient(app) as client, app.state.db.session() as s:
            headers = {"Authorization": f"Bearer {create_brand(s, 'Bench')[1]}"}
            out["upload_to_ready"] = {"input": f"generated textured GLB, 100k triangles, 2048 px texture, {len(glb) / 2**20:.1f} MB",
                                      **upload_to_ready(client, headers, glb, args.runs)}
        app = create_app(Settings(data_dir=tmp / "list-data"))
        with TestClient(app) as client:
            keys = fill_catalogue(app.state.db, 10_000)
            out["listing"] = listing(client, app.state.db, keys, args.requests)
    print(json.dumps(out, indent=1))
    results = REPO / "bench" / "results"
    results.mkdir(exist_ok=True)
    (results / "assets.json").write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
