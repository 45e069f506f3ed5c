"""Procedural garments: mesh soundness, clearance, girths against the graded chart, grading.

Garments are built once per module (female XS, M, XL of every kind, and male M) at about 3000
vertices; the helpers below measure them independently of the generator: exact point-triangle
distances to the body, a triangle-triangle intersection test and tape girths from
`engine.sections`.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial import cKDTree

from assets.garment_chart import GARMENT_KINDS, garment_measurements
from assets.procedural_garments import garment_girths, procedural_garment, reference_body
from engine.sections import connected_labels
from fitroom.errors import FitroomError

SIZES = ("XS", "M", "XL")
CASES = [(kind, size, "female") for kind in GARMENT_KINDS for size in SIZES] + [
    (kind, "M", "male") for kind in GARMENT_KINDS
]
OPENINGS = {"tshirt": 4, "longsleeve": 4, "dress": 4, "skirt": 2, "trousers": 3}
GIRTHS = {"tshirt": ("chest", "waist", "hip"), "longsleeve": ("chest", "waist", "hip"),
          "dress": ("chest", "waist", "hip"), "skirt": ("waist", "hip"), "trousers": ("waist", "hip")}


@pytest.fixture(scope="module")
def bodies(body_model_cpu):
    """(size, sex) -> (reference body vertices (V, 3), its measurements)."""
    from avatar.measurements import measure_body

    out = {}
    for size, sex in {(s, x) for _, s, x in CASES}:
        _, v = reference_body(body_model_cpu, size, sex)
        out[size, sex] = (v, measure_body(v, body_model_cpu))
    return out


@pytest.fixture(scope="module")
def garments(body_model_cpu, bodies):
    return {case: procedural_garment(body_model_cpu, *case, target_vertices=3000) for case in CASES}


# ---- independent measuring helpers -------------------------------------------------------------


def closest_point_on_triangles(p, a, b, c):
    """Closest points (..., 3) to p on triangles abc, by barycentric region tests."""
    ab, ac, ap, bp, cp = b - a, c - a, p - a, p - b, p - c
    d1, d2 = (ab * ap).sum(-1), (ac * ap).sum(-1)
    d3, d4 = (ab * bp).sum(-1), (ac * bp).sum(-1)
    d5, d6 = (ab * cp).sum(-1), (ac * cp).sum(-1)
    va, vb, vc = d3 * d6 - d5 * d4, d5 * d2 - d1 * d6, d1 * d4 - d3 * d2
    with np.errstate(divide="ignore", invalid="ignore"):
        s = vb / (va + vb + vc)
        t = vc / (va + vb + vc)
        q = a + s[..., None] * ab + t[..., None] * ac
        regions = [
            ((va <= 0) & (d4 >= d3) & (d5 >= d6), b + ((d4 - d3) / ((d4 - d3) + (d5 - d6)))[..., None] * (c - b)),
            ((vb <= 0) & (d2 >= 0) & (d6 <= 0), a + (d2 / (d2 - d6))[..., None] * ac),
            ((vc <= 0) & (d1 >= 0) & (d3 <= 0), a + (d1 / (d1 - d3))[..., None] * ab),
            ((d6 >= 0) & (d5 <= d6), c),
            ((d3 >= 0) & (d4 <= d3), b),
            ((d1 <= 0) & (d2 <= 0), a),
        ]
    for mask, value in regions:
        q = np.where(mask[..., None], np.broadcast_to(value, q.shape), q)
    return q


def signed_distance(points, body_v, body_f, k=16):
    """Signed distances (n,) of points to the body surface: exact point-triangle distance over the
    k triangles with the nearest centroids, sign from the closest triangle's normal."""
    tri = body_v[body_f]
    _, idx = cKDTree(tri.mean(axis=1)).query(points, k=k)
    t = tri[idx]
    q = closest_point_on_triangles(points[:, None], t[:, :, 0], t[:, :, 1], t[:, :, 2])
    d = np.linalg.norm(points[:, None] - q, axis=2)
    j = np.argmin(d, axis=1)
    rows = np.arange(len(points))
    f = tri[idx[rows, j]]
    n = np.cross(f[:, 1] - f[:, 0], f[:, 2] - f[:, 0])
    side = np.sign(((points - q[rows, j]) * n).sum(axis=1))
    return d[rows, j] * np.where(side < 0, -1.0, 1.0)


def _orient(a, b, c, d):
    """Signed volumes (n,) of tetrahedra abcd."""
    return np.einsum("ij,ij->i", np.cross(b - a, c - a), d - a)


def segments_cross_triangles(p, q, a, b, c, eps=1e-16):
    """(n,) whether segments pq pass through triangles abc. Signed volumes within eps (m^3) count
    as zero: coplanar faces (a skirt's flat front) give rounding noise of about 1e-23."""
    s1, s2 = _orient(a, b, c, p), _orient(a, b, c, q)
    crosses = ((s1 > eps) & (s2 < -eps)) | ((s1 < -eps) & (s2 > eps))
    u, v, w = _orient(p, q, a, b), _orient(p, q, b, c), _orient(p, q, c, a)
    return crosses & (((u > eps) & (v > eps) & (w > eps)) | ((u < -eps) & (v < -eps) & (w < -eps)))


def self_intersections(V, F) -> int:
    """Number of pairs of faces sharing no vertex whose triangles intersect."""
    tri = V[F]
    lo, hi = tri.min(axis=1), tri.max(axis=1)
    centre = tri.mean(axis=1)
    radius = np.linalg.norm(tri - centre[:, None], axis=2).max()
    pairs = cKDTree(centre).query_pairs(2 * radius, output_type="ndarray")
    i, j = pairs[:, 0], pairs[:, 1]
    overlap = np.all((lo[i] <= hi[j]) & (lo[j] <= hi[i]), axis=1)
    i, j = i[overlap], j[overlap]
    share = (F[i][:, :, None] == F[j][:, None, :]).any(axis=(1, 2))
    i, j = i[~share], j[~share]
    hit = np.zeros(len(i), bool)
    for x, y in ((i, j), (j, i)):
        a, b, c = (V[F[y][:, k]] for k in range(3))
        for e0, e1 in ((0, 1), (1, 2), (2, 0)):
            hit |= segments_cross_triangles(V[F[x][:, e0]], V[F[x][:, e1]], a, b, c)
    return int(hit.sum())


def boundary_loops(F) -> int:
    """Number of boundary loops (chains of edges used by one face)."""
    e = np.sort(np.concatenate([F[:, [0, 1]], F[:, [1, 2]], F[:, [2, 0]]]), axis=1)
    edges, counts = np.unique(e, axis=0, return_counts=True)
    b = edges[counts == 1]
    if len(b) == 0:
        return 0
    verts, inv = np.unique(b, return_inverse=True)
    inv = inv.reshape(-1, 2)
    return len(np.unique(connected_labels(len(verts), inv[:, 0], inv[:, 1])))


def min_angles(V, F):
    """(m,) smallest corner angle of each triangle, degrees."""
    t = V[F]
    out = []
    for k in range(3):
        u, w = t[:, (k + 1) % 3] - t[:, k], t[:, (k + 2) % 3] - t[:, k]
        cos = (u * w).sum(1) / (np.linalg.norm(u, axis=1) * np.linalg.norm(w, axis=1))
        out.append(np.degrees(np.arccos(np.clip(cos, -1, 1))))
    return np.min(out, axis=0)


# ---- the chart ---------------------------------------------------------------------------------


def test_chart_is_body_chart_plus_ease():
    from avatar.size_chart import size_measurements

    body = size_measurements("M", "female")
    assert garment_measurements("tshirt", "M", "female")["chest_cm"] == pytest.approx(body["chest_cm"] + 10)
    assert garment_measurements("skirt", "M", "female")["hip_cm"] == pytest.approx(body["hip_cm"] + 6)
    assert set(garment_measurements("trousers", "M", "male")) >= {"waist_cm", "hip_cm", "length_cm"}
    assert "chest_cm" not in garment_measurements("skirt", "S", "female")
    for kind in GARMENT_KINDS:
        for sex in ("female", "male"):
            rows = [garment_measurements(kind, s, sex) for s in ("XS", "S", "M", "L", "XL")]
            for key in rows[0]:
                values = [r[key] for r in rows]
                assert values == sorted(values), (kind, sex, key)
            assert rows[-1]["length_cm"] > rows[0]["length_cm"]


@pytest.mark.parametrize(
    "args, code",
    [(("gown", "M", "female"), "bad_kind"), (("tshirt", "XXL", "female"), "bad_size"), (("tshirt", "M", "other"), "bad_sex")],
)
def test_chart_errors(args, code):
    with pytest.raises(FitroomError) as e:
        garment_measurements(*args)
    assert e.value.code == code


def test_generator_errors(body_model_cpu):
    for args, code in ((("gown", "M"), "bad_kind"), (("skirt", "3XL"), "bad_size")):
        with pytest.raises(FitroomError) as e:
            procedural_garment(body_model_cpu, *args)
        assert e.value.code == code
    with pytest.raises(FitroomError):
        procedural_garment(body_model_cpu, "skirt", "M", sex="robot")


# ---- the reference bodies ----------------------------------------------------------------------


def test_reference_body_is_cached_on_disk(body_model_cpu, tmp_path, monkeypatch):
    from assets import procedural_garments

    monkeypatch.setenv("FITROOM_DATA_DIR", str(tmp_path))
    monkeypatch.setattr(procedural_garments, "_BODIES", {})
    shape, v = reference_body(body_model_cpu, "s", "male")
    path = tmp_path / "reference_bodies" / "male_S.npz"
    assert path.exists() and [p.name for p in path.parent.iterdir()] == ["male_S.npz"]
    assert v.shape == (body_model_cpu.n_vertices, 3) and abs(v[:, 1].min()) < 1e-9
    monkeypatch.setattr(procedural_garments, "_BODIES", {})
    shape2, v2 = reference_body(body_model_cpu, "S", "male")
    np.testing.assert_array_equal(shape, shape2)
    np.testing.assert_array_equal(v, v2)


# ---- the garments ------------------------------------------------------------------------------


@pytest.mark.parametrize("case", CASES, ids=["-".join(c) for c in CASES])
def test_mesh_is_one_welded_manifold_with_its_openings(garments, bodies, case):
    g = garments[case]
    V, F = g.vertices, g.faces
    assert V.shape[1] == 3 and F.shape[1] == 3 and F.dtype.kind == "i"
    assert 0.85 * 3000 <= len(V) <= 1.15 * 3000
    assert len(np.unique(F)) == len(V)
    labels = connected_labels(len(V), np.r_[F[:, 0], F[:, 1]], np.r_[F[:, 1], F[:, 2]])
    assert len(np.unique(labels)) == 1
    directed = np.concatenate([F[:, [0, 1]], F[:, [1, 2]], F[:, [2, 0]]])
    undirected, counts = np.unique(np.sort(directed, axis=1), axis=0, return_counts=True)
    assert counts.max() <= 2  # edge-manifold
    # Consistent winding: an edge shared by two faces is walked once each way.
    assert len(np.unique(directed, axis=0)) == len(directed)
    assert boundary_loops(F) == OPENINGS[case[0]]
    assert len(cKDTree(V).query_pairs(0.0005)) == 0  # welded
    angles = min_angles(V, F)
    areas = np.linalg.norm(np.cross(V[F[:, 1]] - V[F[:, 0]], V[F[:, 2]] - V[F[:, 0]]), axis=1) / 2
    assert areas.min() > 1e-8
    assert np.mean(angles < 10) < 0.01 and angles.min() > 1.0
    # Normals point away from the body.
    body_v = bodies[case[1], case[2]][0]
    c = V[F].mean(axis=1)
    n = np.cross(V[F[:, 1]] - V[F[:, 0]], V[F[:, 2]] - V[F[:, 0]])
    _, near = cKDTree(body_v).query(c)
    assert np.mean(((c - body_v[near]) * n).sum(axis=1) > 0) > 0.95


@pytest.mark.parametrize("case", CASES, ids=["-".join(c) for c in CASES])
def test_garment_clears_the_body(garments, bodies, body_model_cpu, case):
    g = garments[case]
    d = signed_distance(g.vertices, bodies[case[1], case[2]][0], np.asarray(body_model_cpu.faces))
    assert d.min() >= 0.004, f"closest vertex {d.min() * 1000:.2f} mm"
    np.testing.assert_array_equal(g.body_vertices, bodies[case[1], case[2]][0])


TOPS = [c for c in CASES if c[0] in ("tshirt", "longsleeve", "dress")]


@pytest.mark.parametrize("case", TOPS, ids=["-".join(c) for c in TOPS])
def test_yoke_lies_on_the_shoulders(garments, body_model_cpu, case):
    """Round the neck (the top 6 cm within 12 cm of the centre line) a top lies on the collarbones
    and shoulders; the yoke patches' blend of their boundary once stood 4-7 cm off them there."""
    g = garments[case]
    V = g.vertices
    near_neck = (V[:, 1] > V[:, 1].max() - 0.06) & (np.abs(V[:, 0]) < 0.12)
    d = signed_distance(V[near_neck], g.body_vertices, np.asarray(body_model_cpu.faces))
    assert np.percentile(d, 95) < 0.020 and d.max() < 0.030, f"p95 {np.percentile(d, 95) * 1000:.1f} mm, max {d.max() * 1000:.1f} mm"


@pytest.mark.parametrize("case", CASES, ids=["-".join(c) for c in CASES])
def test_girths_match_the_chart(garments, bodies, case):
    g = garments[case]
    chart = garment_measurements(*case)
    meas = bodies[case[1], case[2]][1]
    assert set(g.girths_cm) == set(GIRTHS[case[0]])
    # The tape itself is checked against hand-computed girths in the synthetic tests below.
    levels = {region: meas[f"{region}_height_cm"] / 100 for region in GIRTHS[case[0]]}
    girths = garment_girths(g.vertices, g.faces, levels)
    for region in GIRTHS[case[0]]:
        assert girths[region] == pytest.approx(chart[f"{region}_cm"], abs=1.0), region
        assert g.girths_cm[region] == pytest.approx(girths[region], abs=0.05)


@pytest.mark.parametrize("case", CASES, ids=["-".join(c) for c in CASES])
def test_no_self_intersections(garments, case):
    g = garments[case]
    assert self_intersections(g.vertices, g.faces) == 0


@pytest.mark.parametrize("case", CASES, ids=["-".join(c) for c in CASES])
def test_attached_is_the_waistband(garments, case):
    g = garments[case]
    kind = case[0]
    assert g.attached.shape == (len(g.vertices),) and g.attached.dtype == bool
    assert (g.kind, g.size, g.sex) == case
    if kind in ("skirt", "trousers"):
        top = g.vertices[:, 1].max()
        band = g.vertices[g.attached, 1]
        assert g.attached.sum() >= 2 * 24  # at least two rows
        assert band.min() >= top - 0.025 and top - band.min() >= 0.01
        assert not g.attached[g.vertices[:, 1] < top - 0.025].any()
    else:
        assert not g.attached.any()


@pytest.mark.parametrize("kind", GARMENT_KINDS)
def test_bigger_sizes_are_bigger(garments, kind):
    region = "chest" if "chest" in GIRTHS[kind] else "hip"
    xs, m, xl = (garments[kind, s, "female"].girths_cm[region] for s in SIZES)
    assert xs < m < xl
    widths = [np.ptp(garments[kind, s, "female"].vertices[:, 2]) for s in SIZES]
    assert widths[0] < widths[2]


def test_silhouettes(garments, bodies):
    """Openings where the kind has them: sleeves' ends, hems and waistbands."""
    meas = bodies["M", "female"][1]
    v = {kind: garments[kind, "M", "female"].vertices for kind in GARMENT_KINDS}
    knee = 0.5 * (meas["inseam_cm"] / 100)  # roughly half-way down the leg
    assert v["tshirt"][:, 1].min() < meas["hip_height_cm"] / 100 - 0.02  # hem below the hip
    assert np.abs(v["longsleeve"][:, 0]).max() > np.abs(v["tshirt"][:, 0]).max() + 0.1  # long sleeves
    assert v["dress"][:, 1].min() < knee + 0.15 and v["skirt"][:, 1].min() < knee + 0.15
    assert v["trousers"][:, 1].min() < 0.15  # to the ankles
    assert v["skirt"][:, 1].max() < meas["chest_height_cm"] / 100 - 0.05


def tube(ys, radius, n=64, x=0.0):
    """A vertical open tube (V, 3), (F, 3): rings of n vertices round (x, z=0) at heights ys
    (bottom to top) of radius radius(y)."""
    a = 2 * np.pi * np.arange(n) / n
    V = np.concatenate([np.c_[x + radius(y) * np.cos(a), np.full(n, y), radius(y) * np.sin(a)] for y in ys])
    k = np.arange(n)
    quads = [(r * n + k, r * n + (k + 1) % n, (r + 1) * n + (k + 1) % n, (r + 1) * n + k) for r in range(len(ys) - 1)]
    F = np.concatenate([np.r_[np.c_[q[0], q[1], q[2]], np.c_[q[0], q[2], q[3]]] for q in quads])
    return V, F


NGON_CM_PER_M = 2 * 64 * np.sin(np.pi / 64) * 100  # a 64-gon tube's perimeter, cm per metre of radius


def torso_with_sleeves(torso_ys, torso_radius, sleeve_ys):
    """A torso tube round x = 0 (rings at torso_ys, radius torso_radius(y)) and two thin sleeve
    tubes (2 cm radius) beside it at x = -0.25 and 0.25 m over sleeve_ys: (V, 3), (F, 3)."""
    parts = [tube(torso_ys, torso_radius), *(tube(sleeve_ys, lambda y: 0.02, n=16, x=x) for x in (-0.25, 0.25))]
    offsets = np.cumsum([0] + [len(v) for v, _ in parts[:-1]])
    return np.concatenate([v for v, _ in parts]), np.concatenate([f + o for (_, f), o in zip(parts, offsets)])


@pytest.mark.parametrize("scale", [0.96, 1.03])
def test_compressed_cloth_is_taped_at_its_rest_length(scale):
    """A tube of 15 cm radius at rest, draped 4 % narrower (within the solver's free compression,
    which stands for fine wrinkles) tapes at its rest girth given its rest shape; stretched 3 %
    wider it tapes at its draped girth (stretched cloth is that long)."""
    rest, F = tube([0.9, 1.0, 1.1], lambda y: 0.15)
    draped = rest * np.array([scale, 1.0, scale])
    at_rest = NGON_CM_PER_M * 0.15
    assert garment_girths(draped, F, {"hip": 1.0})["hip"] == pytest.approx(scale * at_rest, abs=0.01)
    taped = garment_girths(draped, F, {"hip": 1.0}, rest=rest)["hip"]
    assert taped == pytest.approx(max(scale, 1.0) * at_rest, abs=0.01)


def test_chest_tape_stops_below_the_sleeves():
    """The draped XL dress on the XL body read chest ease -5.7 cm against 11.9 designed, nothing
    penetrating: below its sleeves the bodice narrowed 0.64 mm a 2 mm step on to the waist, more
    than the 0.6 mm at which the underarm scan stops, so the tape went down past the waist. Here a
    torso whose section takes in the sleeves down to the underarm (1.15 m), below it a bodice
    narrowing 0.64 mm a step to a waist at 1.06 m, and short sleeves ending at 1.131 m: the tape
    goes 2 cm below the first level without a sleeve (1.130 m), not 2 cm below the waist."""

    slope, r_u, y_u = 0.32, 0.18, 1.1495  # the bodice's radius narrows 0.64 mm a 2 mm step below y_u
    r = lambda y: r_u - slope * (y_u - max(y, 1.06))  # noqa: E731 (a cylinder below the waist)
    V, F = torso_with_sleeves([0.95, 1.06, y_u, 1.1505, 1.25], lambda y: r(y) if y <= y_u else 0.30, [1.131, 1.25])
    chest = garment_girths(V, F, {"chest": 1.20})["chest"]
    assert chest == pytest.approx(NGON_CM_PER_M * r(1.130 - 0.02), abs=0.05)  # 105.1 cm (95.1 below the waist)


def test_chest_tape_finds_an_underarm_that_parts_gradually():
    """The converged XL t-shirt on the XL body read chest ease 34.1 cm: its sleeves parted from the
    torso over several levels, 9 mm a step at most, under the 2 cm drop the scan looked for, so the
    tape went round the sleeves at the chest level. Here a torso whose section takes in the
    sleeves and narrows 2.2 mm a 2 mm step down to the underarm (1.15 m), then 1 cm to a 0.18 m
    bodice, and sleeve hems hanging from 1.149 to 1.131 m beside it: the tape goes 2 cm below the
    underarm."""

    V, F = torso_with_sleeves([0.95, 1.1495, 1.1505, 1.25], lambda y: 0.18 if y < 1.15 else 0.19 + (y - 1.15) * 1.1,
                              [1.131, 1.149])
    chest = garment_girths(V, F, {"chest": 1.20})["chest"]
    assert chest == pytest.approx(NGON_CM_PER_M * 0.18, abs=0.05)  # 113.0 cm (153.9 round the sleeves at 1.20)


def test_chest_tape_ignores_a_loop_beside_a_bodice_that_did_not_narrow():
    """A sash or bow hanging beside a sleeveless bodice is a loop beside the torso's, but the torso
    loop never lost a sleeve's width: the tape stays at the chest level."""

    r = lambda y: 0.15 + 0.04 * (y - 0.95) / 0.30  # noqa: E731 (a bodice a little wider at the bust)
    V, F = torso_with_sleeves([0.95, 1.25], r, [1.12, 1.16])
    chest = garment_girths(V, F, {"chest": 1.20})["chest"]
    assert chest == pytest.approx(NGON_CM_PER_M * r(1.20), abs=0.05)  # 115.1 cm (110.1 at 1.14 m)


def test_chest_tape_stays_within_the_sleeve_caps_beside_long_sleeves():
    """A draped XL bodice narrows 0.8 mm a step on to the waist while long sleeves hang beside it
    all the way: the scan for the sleeves' caps went on to 9.4 cm below the underarm, past the
    waist. Here the loop takes in the sleeves down to 1.15 m, then a bodice narrowing 0.8 mm a
    2 mm step, long sleeves beside it down to 0.95 m: the tape stops 2 cm (SLEEVE_CAP_M) below
    the underarm, then goes the chest line's 2 cm lower."""

    r = lambda y: 0.18 - 0.4 * (1.1495 - y)  # noqa: E731
    V, F = torso_with_sleeves([0.95, 1.1495, 1.1505, 1.25], lambda y: r(y) if y < 1.15 else 0.30, [0.95, 1.25])
    chest = garment_girths(V, F, {"chest": 1.20})["chest"]
    # The drop at 1.150, the caps' 2 cm, the chest line's 2 cm: 103.1 cm (83.1 at 0.982 m before).
    assert chest == pytest.approx(NGON_CM_PER_M * r(1.150 - 0.02 - 0.02), abs=0.05)


@pytest.mark.parametrize("kind", ["trousers", "tshirt"])
def test_draped_garments_keep_their_hip_tape(body_model_cpu, kind):
    """The underarm scan belongs to the chest. Run at the hip too, it took the first loop beside
    the torso's (a trouser leg at the crotch) or a drop in its width (the t-shirt's uneven hem 7 cm
    below the hip) for an underarm and sent the draped M garments' hip tape below them (0 cm)."""
    from avatar.measurements import measure_body
    from engine.drape import DrapeSettings, drape
    from engine.fabrics import fabric_preset

    body = reference_body(body_model_cpu, "M", "female")[1]
    g = procedural_garment(body_model_cpu, kind, "M", "female", target_vertices=3000)
    r = drape(g.vertices, g.faces, g.body_vertices, body, np.asarray(body_model_cpu.faces), fabric_preset("cotton_jersey"),
              attached=g.attached, settings=DrapeSettings(max_steps=60))
    meas = measure_body(body, body_model_cpu)
    girths = garment_girths(r.positions, r.faces, {"hip": meas["hip_height_cm"] / 100}, float(np.median(body[:, 0])))
    # Round the body: trousers 104.4 cm, t-shirt 103.6 cm on a 100.0 cm hip.
    assert meas["hip_cm"] + 2.0 < girths["hip"] < meas["hip_cm"] + 8.0


def test_ten_thousand_vertices(body_model_cpu):
    g = procedural_garment(body_model_cpu, "dress", "M", "female", target_vertices=10_000)
    assert 8_500 <= len(g.vertices) <= 11_500
    assert boundary_loops(g.faces) == 4
    assert g.girths_cm["waist"] == pytest.approx(garment_measurements("dress", "M", "female")["waist_cm"], abs=1.0)
