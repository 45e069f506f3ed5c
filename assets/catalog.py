"""Catalogue repository: brands and their keys, products with owner checks, assets, blob clean-up.

Functions take a SQLAlchemy `Session`, commit their own change and raise FitroomError for what the
caller did wrong (`no_product` when a product does not exist *or is not visible to the caller*, so
another brand's drafts cannot be probed; `forbidden` when it is visible but not the caller's).

API keys are ``fr_<key id>_<secret>``: 16 hex digits that find the row, then 32 random bytes. Only
sha256(secret) is stored. A slow password hash (bcrypt, argon2) protects secrets a person chose,
which can be guessed; these carry 256 bits from `secrets`, so one sha256 is as safe against a
stolen table and keeps every authenticated request at microseconds instead of ~100 ms.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from sqlalchemy import and_, func, select, true, union_all
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from assets.blob_store import BlobStore
from assets.catalog_models import Asset, AssetFile, Brand, Product, UploadJob
from assets.catalog_schemas import ProductCreate, ProductUpdate, UploadedBody
from fitroom.errors import FitroomError

KEY_PREFIX = "fr"
MAX_PAGE = 100


def _hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def create_brand(session: Session, name: str) -> tuple[Brand, str]:
    """A new brand and its API key (returned once; only its hash is kept)."""
    name = " ".join(str(name).split())
    if not 1 <= len(name) <= 120:
        raise FitroomError("bad_brand", "A brand name has 1 to 120 characters.")
    if session.scalar(select(Brand.id).where(func.lower(Brand.name) == name.lower())) is not None:
        raise FitroomError("duplicate_brand", f"A brand called {name!r} exists.")
    key_id, secret = secrets.token_hex(8), secrets.token_urlsafe(32)
    brand = Brand(name=name, key_id=key_id, key_hash=_hash_secret(secret))
    session.add(brand)
    session.commit()
    return brand, f"{KEY_PREFIX}_{key_id}_{secret}"


def authenticate(session: Session, key: str) -> Brand | None:
    """The brand whose API key is `key`, or None."""
    parts = str(key).split("_", 2)
    if len(parts) != 3 or parts[0] != KEY_PREFIX or len(parts[1]) != 16:
        return None
    brand = session.scalar(select(Brand).where(Brand.key_id == parts[1]))
    if brand is None or not hmac.compare_digest(brand.key_hash, _hash_secret(parts[2])):
        return None
    return brand


def _columns(data: dict) -> dict:
    """Validated product fields as column values (None measurements dropped from the size chart)."""
    if data.get("size_chart") is not None:
        data["size_chart"] = {size: {k: v for k, v in m.items() if v is not None} for size, m in data["size_chart"].items()}
    return data


def _save_product(session: Session, product: Product, commit: bool = True) -> Product:
    """Commits (or only flushes, for a caller that commits more with it) a new or changed product."""
    try:
        session.commit() if commit else session.flush()
    except IntegrityError:
        session.rollback()
        raise FitroomError("duplicate_sku", f"The brand already has a product with SKU {product.sku!r}.") from None
    return product


def create_product(session: Session, brand: Brand, data: ProductCreate, *, commit: bool = True) -> Product:
    """A new product of `brand`. With commit=False it is only flushed (the caller commits it with more)."""
    if isinstance(data.reference_body, UploadedBody):
        raise FitroomError("bad_reference_body", "Upload the body mesh to the product first (role reference_body), then set it.")
    product = Product(brand_id=brand.id, brand=brand, **_columns(data.model_dump(mode="json")))
    session.add(product)
    return _save_product(session, product, commit)


def _visible_parts(viewer: Brand | None, operator: bool = False) -> list:
    """Disjoint conditions whose union is what `viewer` may see: published products, and a brand's own drafts.

    Kept apart (not OR-ed) so each part walks its own index in id order and the database merges
    them for a page; an OR made SQLite sort every visible row for each page.
    """
    if operator:
        return [true()]
    parts = [Product.status == "published"]
    if viewer is not None:
        parts.append(and_(Product.status == "draft", Product.brand_id == viewer.id))
    return parts


def list_products(session: Session, viewer: Brand | None, *, offset: int = 0, limit: int = 20, kind: str | None = None,
                  category: str | None = None, brand_id: int | None = None, min_price: int | None = None,
                  max_price: int | None = None, q: str | None = None, status: str | None = None,
                  operator: bool = False) -> tuple[list[Product], int]:
    """One page of the products `viewer` may see (every product for the `operator`), in id order,
    and how many match in all. Prices are minor units; `q` matches a part of the name, case-insensitively.
    """
    if not (0 <= offset and 1 <= limit <= MAX_PAGE):
        raise FitroomError("bad_page", f"offset must be >= 0 and limit 1 to {MAX_PAGE}.")
    where = []
    if kind:
        where.append(Product.kind == kind)
    if category:
        where.append(Product.category == category.strip().lower())
    if brand_id is not None:
        where.append(Product.brand_id == brand_id)
    if min_price is not None:
        where.append(Product.price_minor >= min_price)
    if max_price is not None:
        where.append(Product.price_minor <= max_price)
    if status:
        where.append(Product.status == status)
    if q:
        pattern = "%" + q.strip().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        # SQLite's LIKE already ignores ASCII case (and its lower() knows no more than ASCII): ilike's
        # lower() on every row would only cost time there.
        sqlite = session.get_bind().dialect.name == "sqlite"
        where.append((Product.name.like if sqlite else Product.name.ilike)(pattern, escape="\\"))
    parts = _visible_parts(viewer, operator)
    count = sum(session.scalar(select(func.count()).select_from(Product).where(part, *where)) for part in parts)
    pages = [select(Product.id).where(part, *where) for part in parts]
    page = (pages[0] if len(pages) == 1 else union_all(*pages)).order_by("id").offset(offset).limit(limit)
    ids = session.scalars(page).all()
    rows = session.scalars(select(Product).where(Product.id.in_(ids)).order_by(Product.id)).all() if ids else []
    return list(rows), int(count)


def get_product(session: Session, viewer: Brand | None, product_id: int) -> Product:
    """The product if `viewer` may see it; FitroomError `no_product` otherwise."""
    product = session.get(Product, product_id)
    if product is None or not (product.status == "published" or (viewer is not None and product.brand_id == viewer.id)):
        raise FitroomError("no_product", f"No product {product_id}.")
    return product


def owned_product(session: Session, brand: Brand, product_id: int) -> Product:
    """The product if `brand` owns it; `no_product` when invisible to it, `forbidden` when another's."""
    product = get_product(session, brand, product_id)
    if product.brand_id != brand.id:
        raise FitroomError("forbidden", f"Product {product_id} belongs to another brand.")
    return product


def update_product(session: Session, brand: Brand, product_id: int, changes: ProductUpdate) -> Product:
    """Applies the fields set in `changes` (owner only); the result is validated as a whole."""
    product = owned_product(session, brand, product_id)
    current = {f: getattr(product, f) for f in ProductCreate.model_fields}
    given = changes.model_dump(mode="json", exclude_unset=True)
    merged = {**current, **given}
    # A product that stops being a garment drops its garment fields unless they were given again.
    if merged["kind"] != "garment":
        for f in ("size_chart", "fabric", "reference_body"):
            if f not in given:
                merged[f] = None
    body = merged.get("reference_body") or {}
    uploaded_body = body.get("asset_id") if isinstance(body, dict) else None
    if uploaded_body is not None:
        merged["reference_body"] = None  # checked here against the product's assets, not by the schema
    try:
        valid = ProductCreate.model_validate(merged)
    except ValueError as e:
        raise FitroomError("bad_product", str(e)) from None
    values = _columns(valid.model_dump(mode="json"))
    if uploaded_body is not None:
        asset = session.get(Asset, uploaded_body)
        if asset is None or asset.product_id != product.id or asset.role != "reference_body":
            raise FitroomError("bad_reference_body", f"Asset {uploaded_body} is not a body mesh uploaded to product {product.id}.")
        values["reference_body"] = {"asset_id": asset.id}
    for k, v in values.items():
        setattr(product, k, v)
    return _save_product(session, product)


def asset_variant(size_chart: dict | None, colourways: list | None, size: str | None,
                  colourway: str | None) -> tuple[str | None, str | None]:
    """The size and colourway of an upload (blank is None), checked against the product's chart and colourways."""
    size = (size or "").strip() or None
    colourway = (colourway or "").strip() or None
    if size and size_chart and size not in size_chart:
        raise FitroomError("bad_size", f"Size {size!r} is not in the size chart ({', '.join(size_chart)}).")
    names = [c["name"] for c in colourways or []]
    if colourway and names and colourway not in names:
        raise FitroomError("bad_colourway", f"Colourway {colourway!r} is not one of {', '.join(names)}.")
    return size, colourway


def asset_counts(session: Session, product_ids) -> dict[int, int]:
    """Ready assets per product id."""
    rows = session.execute(select(Asset.product_id, func.count()).where(Asset.product_id.in_(list(product_ids)))
                           .group_by(Asset.product_id)).all()
    return {pid: n for pid, n in rows}


def product_digests(session: Session, product_id: int) -> set[str]:
    files = session.scalars(select(AssetFile.digest).join(Asset).where(Asset.product_id == product_id)).all()
    sources = session.scalars(select(Asset.source_digest).where(Asset.product_id == product_id)).all()
    return set(files) | set(sources)


def asset_digests(asset: Asset) -> set[str]:
    return {f.digest for f in asset.files} | {asset.source_digest}


def referenced(session: Session, digests) -> set[str]:
    """The digests among `digests` that some asset or asset file names."""
    digests = list(digests)
    if not digests:
        return set()
    a = session.scalars(select(AssetFile.digest).where(AssetFile.digest.in_(digests))).all()
    b = session.scalars(select(Asset.source_digest).where(Asset.source_digest.in_(digests))).all()
    return set(a) | set(b)


def delete_unreferenced(session: Session, blobs: BlobStore, digests) -> int:
    """Deletes the blobs among `digests` that no row names any more; how many went.

    Called after the rows naming them are committed away: a crash in between leaves a stray blob
    (harmless), never a row naming a missing blob.
    """
    digests = set(digests)
    keep = referenced(session, digests)
    return sum(blobs.delete(d) for d in digests - keep)


def delete_product(session: Session, blobs: BlobStore, brand: Brand, product_id: int) -> None:
    """Deletes the product, its assets, jobs and now unreferenced blobs (owner only)."""
    product = owned_product(session, brand, product_id)
    digests = product_digests(session, product.id)
    session.delete(product)
    session.commit()
    delete_unreferenced(session, blobs, digests)


def list_assets(session: Session, viewer: Brand | None, product_id: int) -> list[Asset]:
    product = get_product(session, viewer, product_id)
    return list(session.scalars(select(Asset).where(Asset.product_id == product.id).order_by(Asset.id)).all())


def get_asset(session: Session, viewer: Brand | None, asset_id: int) -> Asset:
    """The asset if `viewer` may see its product; `no_asset` otherwise."""
    asset = session.get(Asset, asset_id)
    try:
        if asset is not None:
            get_product(session, viewer, asset.product_id)
            return asset
    except FitroomError:
        pass
    raise FitroomError("no_asset", f"No asset {asset_id}.")


def delete_asset(session: Session, blobs: BlobStore, brand: Brand, asset_id: int) -> None:
    asset = get_asset(session, brand, asset_id)
    owned_product(session, brand, asset.product_id)
    digests = asset_digests(asset)
    product = asset.product
    if (product.reference_body or {}).get("asset_id") == asset.id:
        product.reference_body = None  # the body it named is gone
    session.delete(asset)
    session.commit()
    delete_unreferenced(session, blobs, digests)


def get_job(session: Session, brand: Brand, job_id: str) -> UploadJob:
    """An upload job of one of `brand`'s products; `no_upload` otherwise."""
    job = session.get(UploadJob, str(job_id)[:32])
    if job is None or job.product.brand_id != brand.id:
        raise FitroomError("no_upload", f"No upload {job_id}.")
    return job
