"""Size advice: rank a garment's sizes for one body, with the reasons a shop assistant would give.

For each size the ease at each region the garment has (garment girth minus the shopper's body
girth, cm) is compared with the ease the garment was designed with (its girth minus the chart
body's girth for that size). Too little ease costs three times as much as too much: a size that
is a little loose can be worn, one that is tight cannot. Where the ease is negative the fabric
has to stretch around the body: its strain is body girth / garment girth (100 % = at rest).
"""

from __future__ import annotations

REGIONS = ("chest", "waist", "hip")
TIGHT_WEIGHT = 3.0
SNUG_CM = 3.0  # less ease than designed by this much reads as snug
LOOSE_CM = 8.0  # more ease than designed by this much reads as loose


def size_fit(size: str, garment_cm: dict, body_cm: dict, design_ease_cm: dict) -> dict:
    """How one size fits: {size, score, ease_cm, strain_percent, verdict, reason}.

    garment_cm, body_cm, design_ease_cm : region -> cm for the regions the garment has.
    """
    ease, strain, notes, score = {}, {}, [], 0.0
    for region in REGIONS:
        if region not in garment_cm or region not in body_cm:
            continue
        e = garment_cm[region] - body_cm[region]
        ease[region] = round(e, 1)
        strain[region] = round(100.0 * max(body_cm[region] / garment_cm[region], 1.0), 1)
        off = e - design_ease_cm.get(region, 0.0)
        score += TIGHT_WEIGHT * -off if off < 0 else off
        if e < 0:
            notes.append((0, f"too tight at the {region} (strain {strain[region]:.0f} %)"))
        elif off < -SNUG_CM:
            notes.append((1, f"snug at the {region} ({e:.0f} cm ease, designed for {design_ease_cm[region]:.0f})"))
        elif off > LOOSE_CM:
            notes.append((2, f"loose at the {region} ({e:.0f} cm ease, designed for {design_ease_cm[region]:.0f})"))
    verdict = "too small" if any(k == 0 for k, _ in notes) else "fits"
    eases = ", ".join(f"{r} ease {ease[r]:.0f} cm" for r in ease)
    reason = "; ".join(text for _, text in sorted(notes)) if notes else eases
    return {"size": size, "score": round(score, 2), "ease_cm": ease, "strain_percent": strain, "verdict": verdict,
            "reason": f"{size}: {reason}"}


def rank_sizes(sizes: dict, body_cm: dict, design_ease_cm: dict) -> list[dict]:
    """Sizes best first. sizes : size -> garment girths (region -> cm)."""
    fits = [size_fit(s, g, body_cm, design_ease_cm) for s, g in sizes.items()]
    return sorted(fits, key=lambda f: (f["verdict"] != "fits", f["score"]))
