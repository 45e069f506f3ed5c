import dataclasses

import numpy as np

from assets.try_on import TOO_TIGHT_STRAIN, ShopperBody, look_summary, try_on
from engine.drape import DrapeSettings
from engine.fabrics import fabric_preset


def test_a_garment_far_too_small_does_not_fit_and_says_so(body_model_cpu):
    """The M skirt 30 % narrower than its body, in denim, on that body: its strain p95 is over the
    limit, `fits` is false, and the chart still ranks the sizes (M first for the M body)."""
    from assets.procedural_garments import procedural_garment
    from avatar.measurements import measure_body

    g = procedural_garment(body_model_cpu, "skirt", "M", "female", target_vertices=1500)
    shrunk = dataclasses.replace(g, vertices=g.vertices * [0.7, 1.0, 0.7])
    body = ShopperBody(g.body_vertices, "female", measure_body(g.body_vertices, body_model_cpu))
    look = try_on(body_model_cpu, body, shrunk, fabric_preset("denim"), DrapeSettings(max_steps=15, min_steps=5))
    summary = look_summary(look)
    assert summary["strain_p95"] > TOO_TIGHT_STRAIN and summary["fits"] is False
    assert np.isfinite(look.result.positions).all()
    assert summary["recommended_size"] == "M" and summary["size_advice"][0].startswith("M: ")
