"""Catalogue garments for the try-on: a product id -> what a try-on session drapes.

A product can be tried on when it is a garment the caller may see (published, or the calling
brand's own draft), names fitroom's reference body at a size and sex, and has a ready `model`
asset. `tryon_garment` checks that and returns a `CatalogGarment` (plain data, no database rows);
`garment_mesh` turns it into an `assets.garment.Garment` for a size when the drape runs.

Decisions (see docs/streaming.md, "Catalogue garments"):

- Mesh: the asset's processed full-detail GLB (`lod0.glb`, 100 % of the triangles), not the
  uploaded source. lod0 is always one self-contained GLB, whatever was uploaded (a .zip of a
  .gltf or an .obj with its files cannot be read as it is); it is normalised (centimetres and
  Z-up OBJ files are already metres and +Y up) and a garment keeps its place around its reference
  body there (`model_normalise`). The vertices lod0 splits at UV seams and creases are welded
  back by the drape (`engine.drape` welds its input).
- Reference body: fitroom's reference body at the product's size and sex, or the body mesh the brand
  uploaded to the product (role `reference_body`): its processed lod0 (metres, +Y up, any topology)
  has the body model registered to it (`engine.body_registration`, 2-3 s, once per mesh and process)
  and that fitted body carries the garment. A mesh that is not a body is refused at drape time with
  `not_a_body`; one still processing with `no_reference_body`.
- Sizes: the size chart's sizes. When the product has per-size models, a size drapes its own
  model (and only sizes with a model can be tried on unless an unsized model covers the rest).
  With one unsized model, that mesh is draped for every size and the status says so in `note`:
  it is not scaled by the chart, because uniform scaling is not grading (necklines, armholes and
  shoulders would grow with the chest) and the drape's fit figures would then describe an
  invented garment. The size advice ranks the chart's sizes instead (`assets.try_on`).
- Colourways: the product's, in the brand's hex (one without a hex is shown in neutral grey);
  other names and hex colours are still accepted, as for the demo garments.
"""

from __future__ import annotations

import contextlib
import dataclasses
import shutil
import tempfile
import threading
from pathlib import Path

import numpy as np
from sqlalchemy import exists, select
from sqlalchemy.orm import Session

from assets.blob_store import BlobStore
from assets.catalog import get_product
from assets.catalog_models import Asset, Brand, Product
from assets.garment import Garment
from fitroom.errors import FitroomError

__all__ = ["CatalogGarment", "tryon_garment", "tryon_products", "garment_mesh", "ANY_SIZE"]

ANY_SIZE = ""  # the key of an unsized model in `CatalogGarment.meshes`
NO_HEX = "#8a8a8a"  # a colourway the brand gave no hex
GIRTHS = {"chest_cm": "chest", "waist_cm": "waist", "hip_cm": "hip"}


@dataclasses.dataclass(frozen=True)
class CatalogGarment:
    """A catalogue garment as a try-on needs it.

    meshes : size label (or ANY_SIZE) -> digest of that model's lod0.glb in the blob store.
    size_chart : {size: {chest_cm, waist_cm, hip_cm, length_cm}} (the brand's, cm), possibly {}.
    reference : {"size", "sex"}: the fitroom reference body the garment was modelled on, or
        {"asset_id", "digest", "size": None, "sex": None}: the brand's body mesh (its lod0 digest).
    fabric : the product's fabric ({"preset": name} or parameters) or None.
    colourways : ({"name", "hex"}, ...).
    """

    product_id: int
    name: str
    brand: str
    reference: dict
    meshes: dict
    size_chart: dict
    fabric: dict | None
    colourways: tuple

    @property
    def id(self) -> str:
        """The garment's id in the try-on API (`product:<id>`)."""
        return f"product:{self.product_id}"

    @property
    def sizes(self) -> list[str]:
        """The sizes that can be tried on: the chart's (those with a model when every model is sized)."""
        sizes = (list(self.size_chart) or [s for s in self.meshes if s != ANY_SIZE]
                 or [s for s in [self.reference.get("size")] if s])
        return sizes if ANY_SIZE in self.meshes else [s for s in sizes if s in self.meshes]

    @property
    def per_size(self) -> bool:
        return any(s != ANY_SIZE for s in self.meshes)

    def size_label(self, size: str) -> str:
        """The product's own label of `size` (compared without case); `bad_size` if it has none."""
        wanted = str(size).strip().lower()
        for s in self.sizes:
            if s.lower() == wanted:
                return s
        raise FitroomError("bad_size", f"{self.name} comes in {', '.join(self.sizes)}, not {size!r}.")

    def mesh_digest(self, size: str) -> str:
        return self.meshes.get(size) or self.meshes[ANY_SIZE]

    def modelled_size(self, size: str) -> str | None:
        """The chart size the mesh draped for `size` was made in (None when unknown)."""
        if size in self.meshes:
            return size
        ref = self.reference.get("size")
        return next((s for s in self.size_chart if ref and s.lower() == ref.lower()), None)

    def note(self, size: str) -> str | None:
        """What the shopper should know about the mesh draped for `size`."""
        if size in self.meshes:
            return None
        body = f"the {self.reference['size']} reference body" if self.reference.get("size") else "the brand's body"
        return (f"{self.name} has one 3D model for every size (made on {body}): "
                f"size {size} drapes that model unscaled; the size advice comes from the brand's size chart.")

    @property
    def fabric_name(self) -> str | None:
        """The fabric's name as a session reports it: the preset's, or the parameters' own name."""
        if not self.fabric:
            return None
        from engine.fabrics import fabric_from_dict

        return fabric_from_dict(self.fabric).name

    def fabric_model(self):
        from engine.fabrics import fabric_from_dict

        return fabric_from_dict(self.fabric)

    def colourway_hex(self, name: str) -> str | None:
        """The sRGB hex of the product's colourway `name` (None when it has no such colourway)."""
        from_names = {str(c["name"]).lower(): c.get("hex") for c in self.colourways}
        key = str(name).strip().lower()
        if key not in from_names:
            return None
        return from_names[key] or NO_HEX

    def public(self) -> dict:
        """The garment as the options list and a session's status show it."""
        return {"id": self.id, "product_id": self.product_id, "name": self.name, "brand": self.brand,
                "blurb": self.brand, "sizes": self.sizes, "per_size_models": self.per_size,
                "colourways": [{"name": c["name"], "hex": c.get("hex") or NO_HEX} for c in self.colourways],
                "fabric": self.fabric_name,
                "reference_body": {k: v for k, v in self.reference.items() if k != "digest"}}


def _models(product: Product) -> dict:
    """size (or ANY_SIZE) -> lod0 digest; an asset without a colourway wins, then the oldest."""
    best: dict = {}
    for asset in product.assets:
        lod0 = next((f for f in asset.files if f.name == "lod0.glb"), None)
        if asset.role != "model" or lod0 is None:
            continue
        key = asset.size or ANY_SIZE
        rank = (asset.colourway is not None, asset.id)
        if key not in best or rank < best[key][0]:
            best[key] = (rank, lod0.digest)
    return {k: v[1] for k, v in best.items()}


def _spec(product: Product) -> CatalogGarment:
    """The try-on view of a product; FitroomError with the plain reason when it cannot be tried on."""
    what = f"Product {product.id} ({product.name})"
    if product.kind != "garment":
        raise FitroomError("not_a_garment", f"{what} is {product.kind}, not a garment: only garments can be tried on.")
    ref = product.reference_body or {}
    if "asset_id" in ref:
        body = next((a for a in product.assets if a.id == ref["asset_id"] and a.role == "reference_body"), None)
        lod0 = next((f for f in body.files if f.name == "lod0.glb"), None) if body is not None else None
        if lod0 is None:
            raise FitroomError("no_reference_body",
                               f"{what} names body mesh asset {ref['asset_id']}, which is not a ready reference_body "
                               f"asset of the product: upload the body mesh (role reference_body) and wait until it is ready.")
        reference = {"asset_id": body.id, "digest": lod0.digest, "size": None, "sex": None}
    elif not ref.get("size"):
        raise FitroomError("no_reference_body",
                           f"{what} names no reference body, so its mesh cannot be placed on a shopper: set "
                           "reference_body to fitroom's body at the size it was modelled on ({\"size\": \"M\", \"sex\": \"female\"}).")
    else:
        reference = {"size": ref["size"], "sex": ref.get("sex", "female")}
    meshes = _models(product)
    if not meshes:
        raise FitroomError("no_tryon_model",
                           f"{what} has no ready 3D model: upload one (POST /api/v1/products/{product.id}/assets) "
                           "and try again when it is ready.")
    return CatalogGarment(product_id=product.id, name=product.name, brand=product.brand_name,
                          reference=reference, meshes=meshes,
                          size_chart={k: dict(v) for k, v in (product.size_chart or {}).items()},
                          fabric=dict(product.fabric) if product.fabric else None,
                          colourways=tuple(dict(c) for c in product.colourways or ()))


def tryon_garment(session: Session, viewer: Brand | None, product_id: int) -> CatalogGarment:
    """The product `product_id` as a try-on garment, if `viewer` (a brand or None) may see it.

    Raises FitroomError: `no_product` (unknown or not visible), `not_a_garment`,
    `no_reference_body` or `no_tryon_model`.
    """
    return _spec(get_product(session, viewer, product_id))


def tryon_products(session: Session, limit: int = 100) -> list[CatalogGarment]:
    """The published garments that can be tried on now, newest first (at most `limit`)."""
    has_model = exists().where(Asset.product_id == Product.id, Asset.role == "model")
    rows = session.scalars(select(Product).where(Product.kind == "garment", Product.status == "published", has_model)
                           .order_by(Product.id.desc()).limit(limit)).all()
    out = []
    for product in rows:
        try:
            out.append(_spec(product))
        except FitroomError:
            continue  # not try-on ready (an uploaded reference body, no lod0): not offered
    return out


@contextlib.contextmanager
def _glb_file(blobs: BlobStore, digest: str, gone: FitroomError):
    """A temporary `.glb` copy of a blob (the mesh readers go by the suffix; blobs have none);
    raises `gone` when the blob is no longer in the store."""
    source = blobs.path(digest)
    if not source.is_file():
        raise gone
    with tempfile.TemporaryDirectory(prefix="fitroom-blob-") as folder:
        path = Path(folder) / "model.glb"
        shutil.copyfile(source, path)
        yield path


_BODIES: dict = {}  # lod0 digest -> (vertices, sex): a registration costs seconds, a mesh never changes
_BODIES_LOCK = threading.Lock()
BODIES_KEPT = 32


def uploaded_body(model, digest: str, blobs: BlobStore) -> tuple[np.ndarray, str]:
    """A brand's body mesh (a lod0 blob) in the body model's topology, (V, 3) metres, and the sex its
    fitted gender is closer to; FitroomError `not_a_body` when the model does not fit it."""
    from avatar.mesh_io import read_reference_body

    with _BODIES_LOCK:
        if digest in _BODIES:
            return _BODIES[digest]
    gone = FitroomError("no_reference_body", "The product's body mesh is no longer in the store (was it deleted?).")
    with _glb_file(blobs, digest, gone) as path:
        vertices, info = read_reference_body(path, model)
    sex = "male" if info.get("gender", 1.0) < 0.5 else "female"  # Anny's gender: 0 male, 1 female
    with _BODIES_LOCK:
        if len(_BODIES) >= BODIES_KEPT:
            _BODIES.pop(next(iter(_BODIES)))
        _BODIES[digest] = (vertices, sex)
    return vertices, sex


def garment_mesh(model, garment: CatalogGarment, size: str, blobs: BlobStore) -> Garment:
    """The `Garment` that drapes for `size`: its model's lod0 around the reference body, with its
    texture coordinates and maps where it has them (`read_garment_material`).

    `size_chart` and `modelled_size` ride along for the size advice (`assets.try_on.size_ranking`).
    """
    from assets.garment_io import read_garment_material, read_garment_mesh
    from assets.procedural_garments import reference_body

    gone = FitroomError("no_tryon_model", f"The 3D model of {garment.name} is no longer in the store (was it deleted?).")
    with _glb_file(blobs, garment.mesh_digest(size), gone) as path:
        vertices, faces = read_garment_mesh(path)
        material = read_garment_material(path)
    ref = garment.reference
    if ref.get("digest"):
        body, sex = uploaded_body(model, ref["digest"], blobs)
    else:
        body, sex = reference_body(model, ref["size"], ref["sex"])[1], ref["sex"]
    return Garment(vertices=vertices, faces=faces, attached=np.zeros(len(vertices), bool), body_vertices=body,
                   kind="custom", size=size, sex=sex, size_chart=garment.size_chart,
                   modelled_size=garment.modelled_size(size), material=material)
