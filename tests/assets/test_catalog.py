"""Catalogue repository on SQLite and PostgreSQL: keys, products, visibility, owner checks, filters."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from assets import catalog as cat
from assets.blob_store import BlobStore
from assets.catalog_models import Asset, AssetFile, Brand, Product
from assets.catalog_schemas import ProductCreate, ProductUpdate
from fitroom.errors import FitroomError
from tests.catalog_fixtures import catalog, catalog_url, settings  # noqa: F401 (fixtures)


def product(sku="TEE-1", **kw) -> ProductCreate:
    base = dict(name="Organic tee", sku=sku, price_minor=2500, currency="eur", category="Tops", kind="garment",
                size_chart={"M": {"chest_cm": 104, "length_cm": 70}}, fabric="cotton_jersey",
                reference_body={"size": "M"}, colourways=[{"name": "navy", "hex": "#1a2b3c"}])
    return ProductCreate(**{**base, **kw})


@pytest.fixture
def s(catalog):
    with catalog.session() as session:
        yield session


@pytest.fixture
def brands(s):
    (a, key_a), (b, key_b) = cat.create_brand(s, "Acme"), cat.create_brand(s, "Bolt")
    return a, key_a, b, key_b


def test_keys_are_shown_once_and_stored_hashed(s, brands):
    a, key_a, b, key_b = brands
    assert key_a.startswith("fr_") and len(key_a) > 50
    row = s.scalar(select(Brand).where(Brand.id == a.id))
    assert key_a.split("_", 2)[2] not in (row.key_hash, row.key_id) and len(row.key_hash) == 64
    assert cat.authenticate(s, key_a).id == a.id and cat.authenticate(s, key_b).id == b.id
    for bad in ("", "fr_x_y", key_a[:-1] + ("A" if key_a[-1] != "A" else "B"), f"fr_{a.key_id}_", "Bearer " + key_a):
        assert cat.authenticate(s, bad) is None
    with pytest.raises(FitroomError) as e:
        cat.create_brand(s, "acme")
    assert e.value.code == "duplicate_brand"


def test_create_read_update_and_garment_fields(s, brands):
    a, _, b, _ = brands
    p = cat.create_product(s, a, product())
    assert (p.status, p.currency, p.category, p.fabric) == ("draft", "EUR", "tops", {"preset": "cotton_jersey"})
    assert p.size_chart == {"M": {"chest_cm": 104.0, "length_cm": 70.0}}
    assert cat.get_product(s, a, p.id).name == "Organic tee"
    p = cat.update_product(s, a, p.id, ProductUpdate(price_minor=1999, status="published", fabric={"preset": "denim", "friction": 0.3}))
    assert (p.price_minor, p.status, p.fabric) == (1999, "published", {"preset": "denim", "friction": 0.3})
    # Becoming furniture drops the garment fields; giving them back for furniture is refused.
    p = cat.update_product(s, a, p.id, ProductUpdate(kind="furniture"))
    assert (p.size_chart, p.fabric, p.reference_body) == (None, None, None)
    with pytest.raises(FitroomError) as e:
        cat.update_product(s, a, p.id, ProductUpdate(fabric="denim"))
    assert e.value.code == "bad_product" and "garments only" in e.value.message


def test_sku_is_unique_per_brand(s, brands):
    a, _, b, _ = brands
    cat.create_product(s, a, product("SKU-1"))
    cat.create_product(s, b, product("SKU-1"))  # another brand may use it
    with pytest.raises(FitroomError) as e:
        cat.create_product(s, a, product("SKU-1"))
    assert e.value.code == "duplicate_sku"
    other = cat.create_product(s, a, product("SKU-2"))
    with pytest.raises(FitroomError):
        cat.update_product(s, a, other.id, ProductUpdate(sku="SKU-1"))
    assert s.scalar(select(func.count()).select_from(Product)) == 3


def test_brands_see_published_products_and_only_their_own_drafts(s, brands, tmp_path):
    a, _, b, _ = brands
    draft = cat.create_product(s, a, product("D"))
    public = cat.create_product(s, a, product("P", status="published"))
    assert cat.get_product(s, None, public.id) and cat.get_product(s, b, public.id)
    for viewer in (None, b):
        with pytest.raises(FitroomError) as e:
            cat.get_product(s, viewer, draft.id)
        assert e.value.code == "no_product"
    assert [p.sku for p in cat.list_products(s, b)[0]] == ["P"]
    assert [p.sku for p in cat.list_products(s, a)[0]] == ["D", "P"]
    # Another brand may not change or delete: invisible drafts are 'no_product', published ones 'forbidden'.
    blobs = BlobStore(tmp_path / "blobs")
    for pid, code in ((draft.id, "no_product"), (public.id, "forbidden")):
        with pytest.raises(FitroomError) as e:
            cat.update_product(s, b, pid, ProductUpdate(name="mine now"))
        assert e.value.code == code
        with pytest.raises(FitroomError) as e:
            cat.delete_product(s, blobs, b, pid)
        assert e.value.code == code
    assert cat.get_product(s, a, public.id).name == "Organic tee"


def test_list_filters_search_and_pages(s, brands):
    a, _, b, _ = brands
    for i in range(30):
        owner = a if i % 2 else b
        kind = ("garment", "furniture", "footwear")[i % 3]
        extra = {} if kind == "garment" else dict(size_chart=None, fabric=None, reference_body=None)
        cat.create_product(s, owner, product(f"S{i}", name=f"{'Chair' if kind == 'furniture' else 'Item'} {i} 50%_off",
                                             kind=kind, price_minor=100 * i, status="published",
                                             category="home" if kind == "furniture" else "tops", **extra))
    page, count = cat.list_products(s, None, offset=0, limit=7)
    assert count == 30 and len(page) == 7
    page2, _ = cat.list_products(s, None, offset=7, limit=7)
    assert [p.id for p in page][-1] < page2[0].id
    assert cat.list_products(s, None, kind="furniture")[1] == 10
    assert cat.list_products(s, None, category="HOME")[1] == 10
    assert cat.list_products(s, None, brand_id=a.id)[1] == 15
    assert cat.list_products(s, None, min_price=1000, max_price=1999)[1] == 10
    assert cat.list_products(s, None, q="chair")[1] == 10
    assert cat.list_products(s, None, q="50%_")[1] == 30  # LIKE wildcards in the query are literal
    assert cat.list_products(s, None, q="%")[1] == 30 and cat.list_products(s, None, q="_x")[1] == 0
    with pytest.raises(FitroomError):
        cat.list_products(s, None, limit=1000)


def test_delete_removes_rows_and_only_unreferenced_blobs(s, brands, tmp_path):
    a, _, _, _ = brands
    blobs = BlobStore(tmp_path / "blobs")
    shared, own, other = blobs.put(b"shared"), blobs.put(b"own"), blobs.put(b"other")
    p1, p2 = cat.create_product(s, a, product("A")), cat.create_product(s, a, product("B"))
    for p, digests in ((p1, (shared, own)), (p2, (shared, other))):
        asset = Asset(product_id=p.id, source_name="x.glb", source_digest=digests[0], report={})
        asset.files = [AssetFile(name="lod0.glb", digest=digests[1], content_type="model/gltf-binary", size_bytes=3)]
        s.add(asset)
    s.commit()
    cat.delete_product(s, blobs, a, p1.id)
    assert not blobs.exists(own) and blobs.exists(shared) and blobs.exists(other)
    assert s.scalar(select(func.count()).select_from(Asset)) == 1
    assert s.scalar(select(func.count()).select_from(AssetFile)) == 1
    cat.delete_product(s, blobs, a, p2.id)
    assert list(blobs.digests()) == []
    assert s.scalar(select(func.count()).select_from(AssetFile)) == 0


@pytest.mark.parametrize("bad, where", [
    (dict(kind="furniture"), "garments only"),
    (dict(fabric="wool"), "Unknown fabric"),
    (dict(fabric={"stretch_warp": 1}), "lacks"),
    (dict(size_chart={"M": {}}), "at least one"),
    (dict(size_chart={"M": {"chest_cm": -3}}), "greater than 0"),
    (dict(reference_body={"size": "XXXL"}), "reference_body"),
    (dict(currency="EURO"), "currency"),
    (dict(price_minor=-1), "price_minor"),
    (dict(sku="has space"), "sku"),
    (dict(colourways=[{"name": "red"}, {"name": "Red"}]), "colourway names"),
    (dict(colourways=[{"name": "red", "hex": "red"}]), "hex"),
])
def test_bad_metadata_is_refused_with_the_field_named(bad, where):
    with pytest.raises(ValueError) as e:
        product(**bad)
    assert where in str(e.value)
