"""fitroom's graded garment chart: the measurements (cm) of each procedural garment per size.

A garment's girth is the body chart's girth (`avatar.size_chart`) plus a design ease: the room a
garment leaves round the body so that it can be put on, moved in and hang as designed. The eases
below sit in the ranges that pattern-cutting texts give for each kind of block (e.g. Aldrich,
"Metric Pattern Cutting for Women's Wear" and "... for Menswear": close-fitting dress blocks about
5-8 cm at the bust, easy shirt and jersey blocks about 8-14 cm at the chest, skirts and trousers
1-2 cm at the waist and 4-8 cm at the hip):

- tshirt: regular-fit jersey, 10 cm at the chest; the side seams run nearly straight from the chest,
  so the waist carries what the body's waist suppression leaves free (about 20 cm for women, 16 cm
  for men, whose waist is less suppressed) and the hip 6-8 cm.
- longsleeve: a regular shirt, 12 cm at the chest and a little more everywhere than the t-shirt.
- dress: a fitted bodice, 8 cm at the chest, 6 cm at the waist, 8 cm at the hip, then an A-line skirt.
- skirt and trousers: 6 and 8 cm at the hip. At the waist pattern blocks give 1-2 cm, but a real
  waistband also presses into soft tissue, which a rigid reference body cannot show; every vertex
  of a procedural garment starts at least 4 mm off the body (the cloth solver's contact margin), and
  a closed band 4 mm off a convex waist is 2 pi x 4 mm = 2.5 cm longer than it. The chart therefore
  gives 3.5 cm at the waist: the smallest ease that keeps that margin with 1 mm to spare.

Lengths are taken on the reference body: tops from the high point of the shoulder (where the
shoulder seam meets the neckline) to the hem, sleeves from the shoulder point, skirts and trousers
from the top of the waistband; `hem_cm` is the girth at the hem (the sweep of a skirt, a trouser
leg's opening). They grade by a fixed step per size, as length grades do on high-street charts.
"""

from __future__ import annotations

from avatar.size_chart import SIZES, size_measurements
from fitroom.errors import FitroomError

GARMENT_KINDS = ("tshirt", "longsleeve", "dress", "skirt", "trousers")

# kind -> sex -> girth ease (cm) per region the garment has.
EASE_CM = {
    "tshirt": {"female": {"chest": 10.0, "waist": 20.0, "hip": 6.0}, "male": {"chest": 10.0, "waist": 16.0, "hip": 8.0}},
    "longsleeve": {"female": {"chest": 12.0, "waist": 22.0, "hip": 8.0}, "male": {"chest": 12.0, "waist": 18.0, "hip": 10.0}},
    "dress": {"female": {"chest": 8.0, "waist": 6.0, "hip": 8.0}, "male": {"chest": 8.0, "waist": 6.0, "hip": 8.0}},
    "skirt": {"female": {"waist": 3.5, "hip": 6.0}, "male": {"waist": 3.5, "hip": 6.0}},
    "trousers": {"female": {"waist": 3.5, "hip": 8.0}, "male": {"waist": 3.5, "hip": 8.0}},
}

# kind -> sex -> {measurement: (size M value, grade per size step)}, cm.
LENGTHS_CM = {
    "tshirt": {
        "female": {"length_cm": (63.0, 1.0), "sleeve_cm": (17.0, 0.5)},
        "male": {"length_cm": (71.0, 1.5), "sleeve_cm": (21.0, 0.5)},
    },
    "longsleeve": {
        "female": {"length_cm": (65.0, 1.0), "sleeve_cm": (56.0, 0.5)},
        "male": {"length_cm": (74.0, 1.5), "sleeve_cm": (62.0, 0.5)},
    },
    "dress": {
        "female": {"length_cm": (97.0, 1.0), "sleeve_cm": (9.0, 0.25)},
        "male": {"length_cm": (105.0, 1.0), "sleeve_cm": (10.0, 0.25)},
    },
    "skirt": {"female": {"length_cm": (58.0, 0.5)}, "male": {"length_cm": (62.0, 0.5)}},
    "trousers": {
        "female": {"length_cm": (100.0, 0.5), "inseam_cm": (72.0, 0.0)},
        "male": {"length_cm": (106.0, 0.5), "inseam_cm": (79.0, 0.0)},
    },
}

# Hem girths beyond the hip (skirts' sweep: an A-line flares by about a third of the hip) or fixed
# leg openings (a straight trouser leg), cm: (size M value, grade per size step).
HEM_CM = {
    "dress": {"female": ("hip+", 36.0, 2.0), "male": ("hip+", 36.0, 2.0)},
    "skirt": {"female": ("hip+", 30.0, 2.0), "male": ("hip+", 30.0, 2.0)},
    "trousers": {"female": ("fixed", 40.0, 1.0), "male": ("fixed", 44.0, 1.0)},
}


def garment_measurements(kind: str, size: str, sex: str) -> dict:
    """The chart measurements (cm) of a procedural garment of `kind` in a letter size.

    Returns `chest_cm`, `waist_cm`, `hip_cm` (the girths the kind has), `length_cm`, and where the
    kind has them `sleeve_cm`, `inseam_cm`, `hem_cm`.

    Raises FitroomError (`bad_kind`, or `bad_size` / `bad_sex` from the body chart).
    """
    if kind not in GARMENT_KINDS:
        raise FitroomError("bad_kind", f"Garment kind must be one of {', '.join(GARMENT_KINDS)}, not {kind!r}.")
    body = size_measurements(size, sex)
    step = SIZES.index(size.strip().upper()) - SIZES.index("M")
    out = {f"{region}_cm": body[f"{region}_cm"] + ease for region, ease in EASE_CM[kind][sex].items()}
    for name, (base, grade) in LENGTHS_CM[kind][sex].items():
        out[name] = base + grade * step
    if kind in HEM_CM:
        rule, base, grade = HEM_CM[kind][sex]
        out["hem_cm"] = (out["hip_cm"] if rule == "hip+" else 0.0) + base + grade * step
    return out
