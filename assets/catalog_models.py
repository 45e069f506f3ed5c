"""The catalogue's tables (SQLAlchemy 2 declarative): brands, products, assets and upload jobs.

An `Asset` row exists only for an upload that went through: it is written, with its `AssetFile`
rows, in one transaction after every blob is stored. An upload in flight, or one that failed, is an
`UploadJob` row: its status URL reads it, and a failed one keeps only its status and reasons (no
digests, no blobs). The schema is changed only through Alembic revisions in `assets/migrations/`.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import JSON, BigInteger, DateTime, Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

PRODUCT_KINDS = ("garment", "footwear", "accessory", "furniture", "other")
PRODUCT_STATUSES = ("draft", "published")
ASSET_ROLES = ("model", "reference_body")
JOB_STATUSES = ("queued", "processing", "ready", "failed")


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


class Base(DeclarativeBase):
    type_annotation_map = {dict: JSON, list: JSON}


class Brand(Base):
    """A brand and its API key: `fr_<key_id>_<secret>`, stored as `key_id` and sha256(secret)."""

    __tablename__ = "brands"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(120), unique=True)
    key_id: Mapped[str] = mapped_column(String(16), unique=True)
    key_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Product(Base):
    """A catalogue entry. Prices are integers in the currency's minor unit (cents), never floats.

    Garment-only fields (None for other kinds): `size_chart` {size: {chest_cm, waist_cm, hip_cm,
    length_cm}}, `fabric` ({"preset": name} or every `engine.fabrics.Fabric` parameter),
    `reference_body` ({"size": "M", "sex": "female"} for fitroom's body, {"asset_id": n} for an
    uploaded body mesh). `colourways` is a list of {"name", "hex"} for any kind.
    """

    __tablename__ = "products"
    __table_args__ = (
        UniqueConstraint("brand_id", "sku", name="uq_products_brand_sku"),
        # The storefront's listing walks published products in id order; a brand's listing merges
        # that walk with one over its own drafts (brand, status, id): no sort of the whole table.
        Index("ix_products_status_id", "status", "id"),
        Index("ix_products_brand_status_id", "brand_id", "status", "id"),
        Index("ix_products_kind_status", "kind", "status"),
        Index("ix_products_category_status", "category", "status"),
        Index("ix_products_price", "price_minor"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    brand_id: Mapped[int] = mapped_column(ForeignKey("brands.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(200))
    sku: Mapped[str] = mapped_column(String(64))
    price_minor: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    category: Mapped[str] = mapped_column(String(64))
    description: Mapped[str] = mapped_column(Text, default="")
    kind: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), default="draft")
    size_chart: Mapped[dict | None] = mapped_column(JSON)
    fabric: Mapped[dict | None] = mapped_column(JSON)
    reference_body: Mapped[dict | None] = mapped_column(JSON)
    colourways: Mapped[list] = mapped_column(JSON, default=list)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)

    # Loaded by a second query for the rows at hand: a join would make SQLite sort the listing's join.
    brand: Mapped[Brand] = relationship(lazy="selectin")

    @property
    def brand_name(self) -> str:
        return self.brand.name
    assets: Mapped[list["Asset"]] = relationship(back_populates="product", cascade="all, delete-orphan",
                                                 passive_deletes=True, order_by="Asset.id")


class Asset(Base):
    """A processed 3D model of a product (optionally of one size and colourway): always `ready`."""

    __tablename__ = "assets"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    product_id: Mapped[int] = mapped_column(ForeignKey("products.id", ondelete="CASCADE"), index=True)
    role: Mapped[str] = mapped_column(String(16), default="model")
    size: Mapped[str | None] = mapped_column(String(16))
    colourway: Mapped[str | None] = mapped_column(String(64))
    source_name: Mapped[str] = mapped_column(String(255))
    source_digest: Mapped[str] = mapped_column(String(64), index=True)
    report: Mapped[dict] = mapped_column(JSON)  # the validation report: warnings, stats
    bounds_m: Mapped[list | None] = mapped_column(JSON)
    notes: Mapped[list] = mapped_column(JSON, default=list)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    product: Mapped[Product] = relationship(back_populates="assets")
    files: Mapped[list["AssetFile"]] = relationship(back_populates="asset", cascade="all, delete-orphan",
                                                    passive_deletes=True, order_by="AssetFile.name",
                                                    lazy="selectin")


class AssetFile(Base):
    """A served file of an asset: `lod0.glb` (100 %), `lod1.glb`, `lod2.glb`, `thumbnail.png`, `model.usdz`."""

    __tablename__ = "asset_files"
    __table_args__ = (UniqueConstraint("asset_id", "name", name="uq_asset_files_asset_name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    asset_id: Mapped[int] = mapped_column(ForeignKey("assets.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(32))
    digest: Mapped[str] = mapped_column(String(64), index=True)
    content_type: Mapped[str] = mapped_column(String(64))
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    triangles: Mapped[int | None] = mapped_column(Integer)
    ratio: Mapped[float | None] = mapped_column(Float)

    asset: Mapped[Asset] = relationship(back_populates="files")


class UploadJob(Base):
    """One upload's processing: queued -> processing -> ready (with `asset_id`) or failed (with reasons).

    The id is random (not a counter) so status URLs cannot be enumerated.
    """

    __tablename__ = "upload_jobs"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    product_id: Mapped[int] = mapped_column(ForeignKey("products.id", ondelete="CASCADE"), index=True)
    role: Mapped[str] = mapped_column(String(16), default="model")
    size: Mapped[str | None] = mapped_column(String(16))
    colourway: Mapped[str | None] = mapped_column(String(64))
    source_name: Mapped[str] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(16), default="queued", index=True)
    stage: Mapped[str] = mapped_column(String(32), default="queued")
    progress: Mapped[float] = mapped_column(Float, default=0.0)
    reasons: Mapped[list] = mapped_column(JSON, default=list)  # [{"error": code, "detail": message}]
    warnings: Mapped[list] = mapped_column(JSON, default=list)
    asset_id: Mapped[int | None] = mapped_column(ForeignKey("assets.id", ondelete="SET NULL"))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    finished_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))

    product: Mapped[Product] = relationship()
