"""The store step and job bookkeeping of `streaming.asset_jobs` on SQLite and PostgreSQL: a failure
after blobs were written rolls the rows back and deletes only the blobs this job added."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from assets.blob_store import BlobStore
from assets.catalog import create_brand, create_product
from assets.catalog_models import Asset, AssetFile, UploadJob
from assets.catalog_schemas import ProductCreate
from streaming.asset_jobs import BuiltAsset, BuiltFile, fail_interrupted, stored_asset
from tests.catalog_fixtures import blob_files, catalog, catalog_url, settings  # noqa: F401 (fixtures)

VASE = ProductCreate(name="Vase", sku="V-1", price_minor=100, currency="EUR", category="home", kind="other")


@pytest.fixture
def setup(catalog, settings, tmp_path):
    with catalog.session() as s:
        brand, _ = create_brand(s, "Acme")
        product = create_product(s, brand, VASE)
    upload = tmp_path / "vase.glb"
    upload.write_bytes(b"glTF source bytes")
    built = BuiltAsset([BuiltFile("lod0.glb", b"glTF lod0", "model/gltf-binary", 10, 1.0),
                        BuiltFile("thumbnail.png", b"\x89PNG thumb", "image/png")], {"ok": True}, [], None, [])
    return BlobStore(settings.blob_dir), product, built, upload


def counts(catalog):
    with catalog.session() as s:
        return [s.scalar(select(func.count()).select_from(m)) for m in (Asset, AssetFile)]


def test_stored_asset_commits_rows_and_blobs_together(catalog, setup):
    blobs, product, built, upload = setup
    with catalog.session() as s:
        with stored_asset(s, blobs, s.merge(product), built, upload, source_name="vase.glb") as asset:
            assert asset.id is not None
    assert counts(catalog) == [1, 2] and len(blob_files(blobs.root)) == 3


def test_a_failure_in_the_store_step_leaves_only_blobs_that_were_there(catalog, setup):
    blobs, product, built, upload = setup
    already = blobs.put(b"glTF lod0")  # another asset's identical LOD must survive
    with catalog.session() as s, pytest.raises(RuntimeError):
        with stored_asset(s, blobs, s.merge(product), built, upload, source_name="vase.glb"):
            assert len(blob_files(blobs.root)) == 3
            raise RuntimeError("the disk filled up")
    assert counts(catalog) == [0, 0]
    assert [p.name for p in blob_files(blobs.root)] == [already]


def test_a_product_deleted_meanwhile_fails_the_commit_and_cleans_up(catalog, setup):
    blobs, product, built, upload = setup
    from assets.catalog_models import Product

    with catalog.session() as s, pytest.raises(Exception):
        p = s.get(Product, product.id)
        with catalog.session() as other:
            other.delete(other.get(Product, product.id))
            other.commit()
        with stored_asset(s, blobs, p, built, upload, source_name="vase.glb"):
            pass
    assert counts(catalog) == [0, 0] and blob_files(blobs.root) == []


def test_jobs_left_by_a_stopped_server_are_failed_on_start(catalog, setup, settings):
    _, product, _, _ = setup
    folder = settings.upload_dir / ("0" * 32)
    folder.mkdir(parents=True)
    (folder / "x.glb").write_bytes(b"glTF")
    with catalog.session() as s:
        s.add_all([UploadJob(id="a" * 32, product_id=product.id, source_name="x.glb", status="processing"),
                   UploadJob(id="b" * 32, product_id=product.id, source_name="y.glb", status="failed")])
        s.commit()
    assert fail_interrupted(catalog, settings.upload_dir) == 1
    with catalog.session() as s:
        job = s.get(UploadJob, "a" * 32)
        assert job.status == "failed" and job.reasons[0]["code"] == "interrupted" and job.finished_at
    assert list(settings.upload_dir.iterdir()) == []
