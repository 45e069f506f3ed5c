"""`/api/v1/products`: create, list (paginated, filtered, searched), read, change and delete.

Anyone may read published products; a brand also sees its own drafts. Only the owning brand may
change or delete a product: another brand's draft answers 404 (its existence is not disclosed),
another brand's published product 403.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response, status

from assets import catalog
from assets.catalog_schemas import Kind, ProductCreate, ProductPublic, ProductsPublic, ProductUpdate, Status
from streaming.api_deps import BlobsDep, CurrentBrand, OptionalBrand, SessionDep

router = APIRouter(prefix="/api/v1/products", tags=["products"])


@router.post("", status_code=status.HTTP_201_CREATED, response_model=ProductPublic)
def create_product(data: ProductCreate, session: SessionDep, brand: CurrentBrand, response: Response):
    product = catalog.create_product(session, brand, data)
    response.headers["Location"] = f"{router.prefix}/{product.id}"
    return product


@router.get("", response_model=ProductsPublic)
def list_products(
    session: SessionDep,
    viewer: OptionalBrand,
    offset: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=catalog.MAX_PAGE)] = 20,
    kind: Kind | None = None,
    category: Annotated[str | None, Query(max_length=64)] = None,
    brand_id: int | None = None,
    min_price: Annotated[int | None, Query(ge=0, description="minor units")] = None,
    max_price: Annotated[int | None, Query(ge=0, description="minor units")] = None,
    q: Annotated[str | None, Query(max_length=100, description="part of the name")] = None,
    status: Status | None = None,
):
    rows, count = catalog.list_products(session, viewer, offset=offset, limit=limit, kind=kind, category=category,
                                        brand_id=brand_id, min_price=min_price, max_price=max_price, q=q, status=status)
    return ProductsPublic(data=[ProductPublic.model_validate(p) for p in rows], count=count)


@router.get("/{product_id}", response_model=ProductPublic)
def read_product(product_id: int, session: SessionDep, viewer: OptionalBrand):
    return catalog.get_product(session, viewer, product_id)


@router.patch("/{product_id}", response_model=ProductPublic)
def update_product(product_id: int, changes: ProductUpdate, session: SessionDep, brand: CurrentBrand):
    return catalog.update_product(session, brand, product_id, changes)


@router.delete("/{product_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_product(product_id: int, session: SessionDep, blobs: BlobsDep, brand: CurrentBrand) -> None:
    catalog.delete_product(session, blobs, brand, product_id)
