"""Product metadata as the API and `fitroom asset add --meta` take it (pydantic schema family).

`ProductCreate` is what a brand sends, `ProductUpdate` a partial change (every field optional),
`ProductPublic` what anyone reads. Garment-only fields (size chart, fabric, reference body) are
refused on other kinds, so a chair never carries a chest measurement.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator, model_validator

from assets.catalog_models import PRODUCT_KINDS, PRODUCT_STATUSES
from engine.fabrics import fabric_from_dict, fabric_preset
from fitroom.errors import FitroomError

# fitroom's reference bodies come in the avatar size chart's sizes (avatar/size_chart.py; assets/
# may not import avatar/, so the five names are repeated here).
REFERENCE_SIZES = ("XS", "S", "M", "L", "XL")

Kind = Literal[PRODUCT_KINDS]  # type: ignore[valid-type]
Status = Literal[PRODUCT_STATUSES]  # type: ignore[valid-type]
Label = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=16)]
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Sku = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._\-/]+$")]
Category = Annotated[str, StringConstraints(strip_whitespace=True, to_lower=True, min_length=1, max_length=64)]
Currency = Annotated[str, StringConstraints(strip_whitespace=True, to_upper=True, pattern=r"^[A-Za-z]{3}$")]
Cm = Annotated[float, Field(gt=0, le=400)]
GARMENT_FIELDS = ("size_chart", "fabric", "reference_body")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SizeMeasurements(_Strict):
    """A garment's own measurements at one size, cm (flat garment circumference, not the body's)."""

    chest_cm: Cm | None = None
    waist_cm: Cm | None = None
    hip_cm: Cm | None = None
    length_cm: Cm | None = None

    @model_validator(mode="after")
    def check_some(self):
        if all(v is None for v in self.model_dump().values()):
            raise ValueError("a size needs at least one of chest_cm, waist_cm, hip_cm, length_cm")
        return self


class Colourway(_Strict):
    name: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]
    hex: Annotated[str, StringConstraints(pattern=r"^#[0-9A-Fa-f]{6}$")] | None = None


class FitroomBody(_Strict):
    """fitroom's reference body (`fitroom reference-body`) at a size."""

    size: Literal[REFERENCE_SIZES]  # type: ignore[valid-type]
    sex: Literal["female", "male"] = "female"


class UploadedBody(_Strict):
    """A body mesh uploaded to the same product as an asset with role `reference_body`."""

    asset_id: int


def _fabric(value):
    """A preset name becomes {"preset": name}; any fabric must build (engine.fabrics rules)."""
    if value is None:
        return None
    try:
        if isinstance(value, str):
            return {"preset": fabric_preset(value).name}
        if isinstance(value, dict):
            fabric_from_dict(value)
            return dict(value)
    except FitroomError as e:
        raise ValueError(e.message) from None
    raise ValueError("a fabric is a preset name or an object of parameters")


def _check_garment_fields(kind: str, values: dict) -> None:
    if kind != "garment":
        given = [f for f in GARMENT_FIELDS if values.get(f) is not None]
        if given:
            raise ValueError(f"{', '.join(given)} {'is' if len(given) == 1 else 'are'} for garments only, not {kind}")


class ProductCreate(_Strict):
    """A new product. Prices are integers in the currency's minor unit (1999 EUR = 19.99 EUR)."""

    name: Name
    sku: Sku
    price_minor: Annotated[int, Field(ge=0, le=10**12)]
    currency: Currency
    category: Category
    description: Annotated[str, Field(max_length=5000)] = ""
    kind: Kind
    status: Status = "draft"
    size_chart: Annotated[dict[Label, SizeMeasurements], Field(min_length=1, max_length=40)] | None = None
    fabric: str | dict | None = None
    reference_body: FitroomBody | UploadedBody | None = None
    colourways: Annotated[list[Colourway], Field(max_length=50)] = []

    @field_validator("fabric")
    @classmethod
    def check_fabric(cls, v):
        return _fabric(v)

    @field_validator("colourways")
    @classmethod
    def check_colourways(cls, v):
        names = [c.name.lower() for c in v]
        if len(set(names)) != len(names):
            raise ValueError("colourway names must differ")
        return v

    @model_validator(mode="after")
    def check_garment_fields(self):
        _check_garment_fields(self.kind, self.__dict__)
        return self


class ProductUpdate(_Strict):
    """A partial change: only the fields given are changed (null clears an optional field)."""

    name: Name | None = None
    sku: Sku | None = None
    price_minor: Annotated[int, Field(ge=0, le=10**12)] | None = None
    currency: Currency | None = None
    category: Category | None = None
    description: Annotated[str, Field(max_length=5000)] | None = None
    kind: Kind | None = None
    status: Status | None = None
    size_chart: Annotated[dict[Label, SizeMeasurements], Field(min_length=1, max_length=40)] | None = None
    fabric: str | dict | None = None
    reference_body: FitroomBody | UploadedBody | None = None
    colourways: Annotated[list[Colourway], Field(max_length=50)] | None = None

    @field_validator("fabric")
    @classmethod
    def check_fabric(cls, v):
        return _fabric(v)


class ProductPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    brand_id: int
    brand_name: str
    name: str
    sku: str
    price_minor: int
    currency: str
    category: str
    description: str
    kind: str
    status: str
    size_chart: dict | None
    fabric: dict | None
    reference_body: dict | None
    colourways: list
    created_at: dt.datetime
    updated_at: dt.datetime


class ProductsPublic(BaseModel):
    data: list[ProductPublic]
    count: int
