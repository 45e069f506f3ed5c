import numpy as np
import pytest


@pytest.fixture(scope="session")
def reference_bodies(body_model_cpu):
    """fitroom's female reference bodies M and L (cached in the data directory)."""
    from assets.procedural_garments import reference_body

    return {s: reference_body(body_model_cpu, s, "female")[1] for s in ("M", "L")}


@pytest.fixture(scope="session")
def small_skirt(body_model_cpu):
    from assets.procedural_garments import procedural_garment

    return procedural_garment(body_model_cpu, "skirt", "M", "female", target_vertices=1500)
