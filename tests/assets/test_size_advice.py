import pytest

from assets.size_advice import rank_sizes, size_fit

BODY = {"chest": 100.0, "waist": 84.0}
DESIGN = {"chest": 8.0, "waist": 6.0}


def test_a_size_with_its_designed_ease_fits_and_says_its_ease():
    fit = size_fit("M", {"chest": 108.0, "waist": 90.0}, BODY, DESIGN)
    assert fit == {"size": "M", "score": 0.0, "ease_cm": {"chest": 8.0, "waist": 6.0},
                   "strain_percent": {"chest": 100.0, "waist": 100.0}, "verdict": "fits",
                   "reason": "M: chest ease 8 cm, waist ease 6 cm"}


def test_a_size_smaller_than_the_body_is_too_small_with_its_strain():
    # Chest 4 cm short of the body: the knit stretches 100/96 = 104.2 %; 12 cm short of its design
    # ease costs three times as much as a loose centimetre.
    fit = size_fit("S", {"chest": 96.0, "waist": 87.0}, BODY, DESIGN)
    assert fit["verdict"] == "too small"
    assert fit["strain_percent"]["chest"] == pytest.approx(104.2)
    assert fit["score"] == pytest.approx(3 * 12.0 + 3 * 3.0)
    assert fit["reason"] == "S: too tight at the chest (strain 104 %)"


def test_snug_and_loose_are_told_and_fitting_sizes_rank_first():
    sizes = {"XS": {"chest": 95.0, "waist": 80.0}, "S": {"chest": 103.0, "waist": 86.0},
             "M": {"chest": 108.0, "waist": 90.0}, "XL": {"chest": 120.0, "waist": 102.0}}
    ranked = rank_sizes(sizes, BODY, DESIGN)
    # Scores: M 0; XL 12 + 12 cm looser than designed; S 3 x (5 + 4) cm snugger; XS 3 x (13 + 10), too small: last.
    assert [(r["size"], r["score"], r["verdict"]) for r in ranked] == [
        ("M", 0.0, "fits"), ("XL", 24.0, "fits"), ("S", 27.0, "fits"), ("XS", 3 * (13.0 + 10.0), "too small")]
    by = {r["size"]: r for r in ranked}
    assert by["S"]["reason"] == "S: snug at the chest (3 cm ease, designed for 8); snug at the waist (2 cm ease, designed for 6)"
    assert by["XL"]["reason"] == "XL: loose at the chest (20 cm ease, designed for 8); loose at the waist (18 cm ease, designed for 6)"
