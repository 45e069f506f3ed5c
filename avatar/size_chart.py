"""fitroom's graded size chart: the body measurements (cm) each letter size is made for.

The values are the middles of the EN 13402-3 body-dimension intervals for letter sizes, with a
6 cm grade between XS-S-M and 8 cm between M-L-XL on the chest, as European high-street charts
grade them. Stature is the chart's reference height for the sex (EN 13402-3 uses 168 cm for women
and 180 cm for men in its examples). Garments are modelled on the reference body of a size
(`fitroom reference-body`), and size advice compares a shopper's avatar with these numbers.
"""

from __future__ import annotations

from fitroom.errors import FitroomError

SIZES = ("XS", "S", "M", "L", "XL")

# sex -> size -> (chest, waist, hip, stature), cm
CHART = {
    "female": {
        "XS": (80.0, 63.0, 88.0, 168.0),
        "S": (86.0, 69.0, 94.0, 168.0),
        "M": (92.0, 75.0, 100.0, 168.0),
        "L": (100.0, 83.0, 108.0, 168.0),
        "XL": (108.0, 91.0, 116.0, 168.0),
    },
    "male": {
        "XS": (86.0, 72.0, 88.0, 180.0),
        "S": (92.0, 78.0, 94.0, 180.0),
        "M": (100.0, 86.0, 100.0, 180.0),
        "L": (108.0, 94.0, 106.0, 180.0),
        "XL": (116.0, 102.0, 112.0, 180.0),
    },
}


def size_measurements(size: str, sex: str) -> dict:
    """The chart's body measurements for a size: chest_cm, waist_cm, hip_cm, stature_cm."""
    size = size.strip().upper()
    if sex not in CHART:
        raise FitroomError("bad_sex", f"Sex must be 'female' or 'male', not {sex!r}.")
    if size not in CHART[sex]:
        raise FitroomError("bad_size", f"Size must be one of {', '.join(SIZES)}, not {size!r}.")
    chest, waist, hip, stature = CHART[sex][size]
    return {"chest_cm": chest, "waist_cm": waist, "hip_cm": hip, "stature_cm": stature}
