"""Fabrics: the mechanical constants of a cloth, in SI units, and the presets fitroom ships.

Stretch and shear are membrane stiffnesses (N/m: force per unit width per unit strain, i.e. Young's
modulus times thickness), bending is a flexural rigidity (N*m: moment per unit width per unit
curvature), density is areal (kg/m^2). Warp is the grain that runs down the garment (the pattern's
vertical), weft runs around it.

Where the presets come from. Bending and shear are Kawabata (KES-F) values of typical fabrics of
each kind as tabulated in the textile literature (Kawabata & Niwa, "Fabric performance in clothing
and clothing manufacture", J. Text. Inst. 80, 1989; and the KES tables reproduced in Hu, "Fabric
testing", 2008): B in gf*cm^2/cm (1 gf*cm^2/cm = 9.807e-5 N*m) and G in gf/(cm*deg)
(1 gf/(cm*deg) = 56.2 N/m per radian of shear). Stretch is the secant tensile stiffness up to the
KES-F EMT load (500 gf/cm = 490 N/m): 490 N/m divided by the strain EMT at that load. Wovens
extend 2-8 % there (denim 2-3 %, wool suiting 4-5 %, silk 6-8 %), knits 25-60 % (the course, or
weft, direction about twice the wale); fabrics are stiffer than that secant at small strain only
for wovens, so the knits' values are, if anything, soft. Areal densities are the fabrics' usual
trade weights (12 oz denim = 407 g/m^2, 19 momme silk = 81 g/m^2). Friction is the kinetic coefficient
against dry skin reported for each fibre (Gwosdow et al., Textile Res. J. 56, 1986; Derler &
Gerhardt, Tribol. Lett. 45, 2012: 0.25-0.6).
"""

from __future__ import annotations

import dataclasses
import math

from fitroom.errors import FitroomError

KES_BENDING = 9.80665e-5  # N*m per gf*cm^2/cm
KES_SHEAR = 9.80665e-3 / 1e-2 / math.radians(1.0)  # N/m per radian, per gf/(cm*deg)


@dataclasses.dataclass(frozen=True)
class Fabric:
    """Mechanical constants of a fabric (SI).

    stretch_warp, stretch_weft : N/m, membrane stiffness along and across the grain.
    shear : N/m per radian of in-plane shear.
    bending : N*m, flexural rigidity.
    density : kg/m^2, areal density.
    thickness : m.
    friction : kinetic friction coefficient against skin.
    """

    name: str
    stretch_warp: float
    stretch_weft: float
    shear: float
    bending: float
    density: float
    thickness: float
    friction: float

    def __post_init__(self):
        for f in dataclasses.fields(self):
            if f.name == "name":
                continue
            value = getattr(self, f.name)
            if not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
                raise FitroomError("bad_fabric", f"Fabric {f.name} must be a finite number >= 0, not {value!r}.")
        if min(self.stretch_warp, self.stretch_weft, self.density, self.thickness) <= 0:
            raise FitroomError("bad_fabric", "Fabric stretch, density and thickness must be greater than 0.")
        if self.friction > 2.0:
            raise FitroomError("bad_fabric", f"Fabric friction {self.friction} is not a cloth's (0 to 2).")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


PRESETS = {
    # Single jersey, 100 % cotton, 160 g/m^2: B 0.02, G 0.5 (KES); EMT 25 % wale, 50 % course.
    "cotton_jersey": Fabric("cotton_jersey", 2000.0, 1000.0, 0.5 * KES_SHEAR, 0.02 * KES_BENDING, 0.160, 0.6e-3, 0.45),
    # 12 oz rigid denim: B 0.35, G 3.0 (heavy twill); EMT 2 % warp, 3 % weft.
    "denim": Fabric("denim", 24000.0, 16000.0, 3.0 * KES_SHEAR, 0.35 * KES_BENDING, 0.407, 0.9e-3, 0.50),
    # 19 momme silk charmeuse: B 0.008, G 0.25; EMT 6 % warp, 8 % weft; drapes in fine folds.
    "silk_charmeuse": Fabric("silk_charmeuse", 8000.0, 6000.0, 0.25 * KES_SHEAR, 0.008 * KES_BENDING, 0.081, 0.2e-3, 0.25),
    # Worsted wool suiting, 250 g/m^2: B 0.10, G 0.8, EMT 4 % warp, 5 % weft (KES suit data).
    "wool_suiting": Fabric("wool_suiting", 12000.0, 10000.0, 0.8 * KES_SHEAR, 0.10 * KES_BENDING, 0.250, 0.5e-3, 0.45),
    # Polyester interlock knit, 180 g/m^2: B 0.04, G 0.4; EMT 30 % wale, 60 % course.
    "polyester_knit": Fabric("polyester_knit", 1600.0, 800.0, 0.4 * KES_SHEAR, 0.04 * KES_BENDING, 0.180, 0.7e-3, 0.35),
}


def fabric_preset(name: str) -> Fabric:
    """The preset called `name` (see PRESETS)."""
    key = str(name).strip().lower().replace("-", "_").replace(" ", "_")
    if key not in PRESETS:
        raise FitroomError("bad_fabric", f"Unknown fabric {name!r}; the presets are {', '.join(PRESETS)}.")
    return PRESETS[key]


def fabric_from_dict(d: dict) -> Fabric:
    """A fabric from a preset name (`{"preset": "denim"}`, optionally with overrides) or all parameters."""
    if not isinstance(d, dict):
        raise FitroomError("bad_fabric", "A fabric is given as a preset name or an object of parameters.")
    base = dataclasses.asdict(fabric_preset(d["preset"])) if "preset" in d else {"name": "custom"}
    unknown = set(d) - {f.name for f in dataclasses.fields(Fabric)} - {"preset"}
    if unknown:
        raise FitroomError("bad_fabric", f"Unknown fabric parameters: {', '.join(sorted(unknown))}.")
    base.update({k: v for k, v in d.items() if k != "preset"})
    missing = {f.name for f in dataclasses.fields(Fabric)} - set(base)
    if missing:
        raise FitroomError("bad_fabric", f"The fabric lacks {', '.join(sorted(missing))}.")
    return Fabric(**base)
