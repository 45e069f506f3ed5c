"""The cloth solver: projective dynamics (Bouaziz et al. 2014) with body and self contact.

Why projective dynamics and not XPBD or VBD. Fabric stiffness spans two orders of magnitude
(1000 N/m for a jersey's weft, 24000 N/m for denim's warp) and garments hang: a dress's skirt
carries its own weight from the waist. XPBD solved by Jacobi sweeps, the GPU-parallel form,
propagates tension one ring of triangles per sweep, so a 10k-vertex skirt under gravity sags until
hundreds of sweeps per step are spent; VBD converges faster but needs per-colour Newton steps.
Projective dynamics splits each implicit Euler step into a per-triangle local step (project each
triangle's deformation onto its unstretched, unsheared set: independent, one vectorised pass) and
a global step whose matrix M/h^2 + sum w G^T G + bending changes only with the contact set, so it
is factorised rarely and every global step is two triangular solves that carry tension across the
whole garment. The quadratic bending energy of a fabric flat at rest lives in that matrix and
costs nothing per step. Each step is stable at any time step. Its weakness, measured: with few
iterations large rotations converge slowly, so free-hanging cloth is over-damped (docs/cloth.md);
Anderson acceleration of the passes (Peng et al. 2018) recovers about five plain passes per pass.

One step (`ClothSolver.step`): predict y = x + h v + h^2 g; find the body contacts at y (closest
point and normal, `colliders`) and project y out of the skin; hold touching vertices by springs
to their contact anchors inside the global step (`_update_anchors`: static friction; a vertex
whose hold pulls harder than Coulomb's limit lets go and slides, `_slip`); `iterations` times: local
step, global solve; cap the step's motion; push self-contacts apart (`self_collision.repel`); find
the contacts again and project out of the skin; kinetic Coulomb friction on the step's tangential
motion of pushed vertices (`_friction`; one it stops sticks again); v = (x - x0) / h, damped.
Constraint weights (N*m) are stiffness times rest area: stretch k A (1/2 w (|f| - 1)^2 =
1/2 k A strain^2), shear 2 G A (the projection splits the shear angle between the two columns).
"""
from __future__ import annotations

import dataclasses

import numpy as np
import scipy.sparse as sp

from engine.backend import rowdot, rownorm, to_numpy
from engine.cloth_model import ClothModel, ClothState, deformation_columns
from engine.self_collision import repel, vertex_triangle_pairs

GRAVITY = (0.0, -9.81, 0.0)
SELF_SLACK = 0.005  # m searched beyond the self-contact thickness


@dataclasses.dataclass(frozen=True)
class SolverSettings:
    """dt : s per step; iterations : local/global passes per step; damping : 1/s velocity decay;
    skin_offset : m kept between cloth and collider; contact_margin : m beyond it within which a
    contact is taken at the step's start; self_thickness : m between sheets (None: fabric
    thickness x 2, at least 2 mm), 0 turns self-collision off; attach_stiffness : N/m holding each
    attached vertex to its target; max_step : m, the most a vertex moves in one step;
    contact_hold : the anchor springs' stiffness relative to each vertex's membrane stiffness
    (0 turns holding off); contact_gap : m beyond the skin offset within which a vertex touches;
    anderson : passes of history for Anderson acceleration of the local/global passes (0: plain).
    Plain passes barely rotate cloth (docs/cloth.md): a clamped 10 cm silk strip droops 0.98 cm in
    3 s with 6 passes, 3.05 cm with 6 accelerated ones, 5.4 cm with 20 (5.8 cm: 100 plain passes).
    Smaller steps with fewer passes at the same cost droop no more: at the default's 360 passes per
    simulated second free cloth drifts at a speed set by the passes per second, whatever the step
    (Cusick discs at 1/240 s x 2 as at 1/60 s x 6), and garments pay the contact queries per step
    (the t-shirt took 2.7 times as long at 1/240 s x 2). A Cusick disc drapes as converged from
    1/120 s x 50 passes (docs/cloth.md: measured settings).
    compression_slack : the fraction of in-plane compression that costs nothing. Fabric buckles
    under compression at almost no stress, in wrinkles finer than the mesh's edges; flat triangles
    that must keep their size lock doubly curved folds (a Cusick disc of silk, whose membrane is
    stiff for its weight, draped to 0.345 at converged steps, above jersey's 0.228; with 5 %: 0.106
    against 0.115, and the coefficient rises with bending across the presets). Fully free
    compression let a lone triangle collapse to 80 %.
    global_step : "projective" (local/global passes) or "newton": `iterations` Newton steps on the
    same energy, each solved by `newton_cg` conjugate-gradient iterations preconditioned with the
    projective-dynamics matrix (its first iterate is the projective pass) and a backtracking line
    search. The membrane's stretch Hessian is exact (its negative part clamped): it lets cloth
    rotate, which the projective matrix resists as if it were stretch. Slower per step, for drapes
    that hang free (docs/cloth.md)."""

    dt: float = 1.0 / 60.0
    iterations: int = 6
    damping: float = 8.0
    gravity: tuple = GRAVITY
    skin_offset: float = 0.0025
    contact_margin: float = 0.01
    self_thickness: float | None = None
    attach_stiffness: float = 1.0e5
    max_step: float = 0.01
    contact_hold: float = 0.5
    contact_gap: float = 0.002
    anderson: int = 5
    compression_slack: float = 0.05
    global_step: str = "projective"
    newton_cg: int = 8


class LinearSystem:
    """A sparse SPD matrix (N, N) with a fixed sparsity pattern, factorised; `solve(rhs (N, 3))`,
    `refactor(matrix)` for new values on the same pattern, `add_to_diagonal(delta)` for the contact
    holds' changes. The factorisation waits for the next solve, so values replaced before it are
    never factorised (a drape's first step replaces them twice: relaxed membrane, then contact
    holds); `factorisations` counts those done, `updates` the diagonal changes folded into a
    factor instead.

    Factorised on the host for both backends: CHOLMOD's simplicial Cholesky with nested-dissection
    ordering (scikit-sparse), the ordering and symbolic analysis done once; SciPy's SuperLU where
    scikit-sparse is missing. On a 9.5k-vertex t-shirt: CHOLMOD 53 ms a refactorisation and 2.2 ms
    a 3-column solve alone (2.7 ms inside a drape), SuperLU (COLAMD) 170 ms and 6 ms. On CuPy each solve takes the (N, 3)
    right-hand side to the host and back (230 KB at 10k vertices): cupyx's SuperLU factorises on
    the host too, and re-runs cuSPARSE's triangular-solve analysis at every solve (cupy#8580). A
    solve that stays on the device is for a GPU session to measure.

    A diagonal change on at most `UPDATE_FRACTION` of the rows is folded into CHOLMOD's factor as
    a rank-k update and downdate (Davis and Hager's updown) instead of a new factorisation: on the
    10k t-shirt's matrix 4 ms for 50 rows and 14 ms for 200 against 54 ms, the same solution to 1e-9
    relative (500 rows: 70-80 ms, dearer than refactorising).
    """

    UPDATE_FRACTION = 0.02

    def __init__(self, matrix, xp, cholmod: bool = True):
        self.xp = xp
        self._symbolic = None
        self.factorisations = self.updates = 0
        if cholmod:
            try:
                from sksparse.cholmod import analyze

                self._symbolic = analyze(matrix.tocsc(), mode="simplicial", ordering_method="nesdis")
            except ImportError:
                pass
        self.refactor(matrix)

    def refactor(self, matrix) -> None:
        self._matrix, self._solve = matrix, None

    def add_to_diagonal(self, delta) -> None:
        """The matrix plus diag(delta) (N,) host floats; the kept diagonal stays positive."""
        rows = np.flatnonzero(delta)
        if len(rows) == 0:
            return
        self._matrix = self._matrix + sp.diags(delta)
        factor = self._solve
        if not hasattr(factor, "update_inplace") or len(rows) > self.UPDATE_FRACTION * len(delta):
            self._solve = None  # refactorised at the next solve
            return
        for subtract, side in ((False, delta > 0), (True, delta < 0)):
            cols = np.flatnonzero(side)
            if len(cols):  # L L^T +- C C^T with C = sqrt(|delta|) on the changed rows
                c = sp.csc_matrix((np.sqrt(np.abs(delta[cols])), (cols, np.arange(len(cols)))), shape=(len(delta), len(cols)))
                factor.update_inplace(c, subtract=subtract)
        self.updates += 1

    def _factorise(self) -> None:
        matrix = self._matrix
        self.factorisations += 1
        if self._symbolic is not None:
            self._solve = self._symbolic.cholesky(matrix.tocsc())
        else:
            from scipy.sparse.linalg import splu

            self._solve = splu(matrix.tocsc(), permc_spec="COLAMD").solve

    def solve(self, rhs):
        """x (N, 3) on rhs's backend with A x = rhs (N, 3)."""
        if self._solve is None:
            self._factorise()
        if self.xp is np:
            return self._solve(rhs)
        return self.xp.asarray(self._solve(to_numpy(rhs)))


def membrane_terms(model: ClothModel, x, slack: float = 0.0):
    """The local step: per-triangle projected deformation columns, weighted, and the stretch
    geometry the Newton step needs.

    Returns (warp target (F, 3), weft target (F, 3), stretch (warp, weft)). The targets are already
    multiplied by their weights, i.e. w_stretch p + w_shear q for each column; p is the column
    scaled to a length in [1 - slack, 1] (unstretched; `slack` of compression is free), q the pair
    of columns turned symmetrically to a right angle (no shear), lengths kept. stretch: per column
    (unit direction (F, 3), length (F, 1), target length (F, 1)).
    """
    xp = model.xp
    fu, fv = deformation_columns(model, x)
    lu = xp.maximum(rownorm(fu)[:, None], 1e-12)
    lv = xp.maximum(rownorm(fv)[:, None], 1e-12)
    a, b = fu / lu, fv / lv
    s, d = a + b, a - b
    s = s / xp.maximum(rownorm(s)[:, None], 1e-12)
    d = d / xp.maximum(rownorm(d)[:, None], 1e-12)
    r = 1.0 / np.sqrt(2.0)
    pu, pv = xp.clip(lu, 1.0 - slack, 1.0), xp.clip(lv, 1.0 - slack, 1.0)
    tu = model.stretch_warp[:, None] * pu * a + model.shear[:, None] * (lu * r) * (s + d)
    tv = model.stretch_weft[:, None] * pv * b + model.shear[:, None] * (lv * r) * (s - d)
    return tu, tv, ((a, lu, pu), (b, lv, pv))


def membrane_targets(model: ClothModel, x, slack: float = 0.0):
    """The weighted targets (warp (F, 3), weft (F, 3)) of `membrane_terms`."""
    tu, tv, _ = membrane_terms(model, x, slack)
    return tu, tv


def membrane_spread(model: ClothModel, device: bool = True):
    """The sparse operator S (N, 2F) that spreads per-triangle targets back to the vertices:
    S @ [tu; tv] = sum_tri G^T (targets), the membrane's part of the global step's right side
    (N, 3). On the model's device, or SciPy's on the host when `device` is False."""
    f = to_numpy(model.faces)
    tri = np.repeat(np.arange(len(f)), 3)
    vals = np.concatenate([to_numpy(model.grad_warp).reshape(-1), to_numpy(model.grad_weft).reshape(-1)])
    spread = sp.csr_matrix((vals, (np.concatenate([f.reshape(-1)] * 2), np.concatenate([tri, len(f) + tri]))),
                           shape=(model.n_vertices, 2 * len(f)))
    return spread if model.xp is np or not device else _device_csr(spread)


def _device_csr(matrix):
    import cupyx.scipy.sparse as csp

    return csp.csr_matrix(matrix)


def system_matrix(model: ClothModel, dt: float, attach_weight):
    """The global step's matrix (N, N) as a SciPy CSR matrix (host): S diag(w) S^T for the
    membrane (w: each column's stretch plus shear weight) + bending + mass / dt^2 + attachments."""
    s = membrane_spread(model, device=False)
    w = np.concatenate([to_numpy(model.stretch_warp + model.shear), to_numpy(model.stretch_weft + model.shear)])
    n = model.n_vertices
    bending = sp.csr_matrix((model.bending_values, (model.bending_rows, model.bending_cols)), shape=(n, n))
    diag = to_numpy(model.mass) / dt**2 + to_numpy(attach_weight)
    return (s @ sp.diags(w) @ s.T + bending + sp.diags(diag)).tocsr()


class ClothSolver:
    """Steps a `ClothModel` with a fixed time step; holds the model, the factorised matrix and
    scratch data, never the state.

    collider : an object with `contacts(x) -> (closest, normal, signed distance)` or None.
    """

    def __init__(self, model: ClothModel, settings: SolverSettings = SolverSettings(), collider=None):
        xp = model.xp
        self.model, self.settings, self.collider = model, settings, collider
        h = settings.dt
        if settings.global_step not in ("projective", "newton"):
            raise ValueError(f"global_step must be 'projective' or 'newton', not {settings.global_step!r}")
        self.base_model = model
        self.membrane_scale = (1.0, 1.0)  # (stretch, shear): see set_membrane_scale
        self.attach_weight = xp.where(model.attached, settings.attach_stiffness, 0.0)
        self._assemble()
        self.system = LinearSystem(self.matrix, xp)
        self._spread = membrane_spread(model)
        self.gravity_step = xp.asarray(settings.gravity, dtype=xp.float64) * h**2
        thickness = settings.self_thickness
        if thickness is None:
            thickness = max(2.0 * model.fabric.thickness, 0.002)
        self.self_thickness = float(thickness)
        self.reset_contacts()

    def reset_contacts(self) -> None:
        """Forgets what the steps so far found: contact anchors and holds, self-contact pairs, the
        last step's contact planes and forces, to restart from another state as a new solver would.

        The last step's positions are kept (by identity) to reuse its contact planes and self-contact
        pairs: a caller that moves `state.positions` in place must call this first."""
        xp, n = self.model.xp, self.model.n_vertices
        self._hold = xp.zeros(n)  # the factorised hold weights (N,), this step
        self._factorise_holds(np.zeros(n, bool))
        self._touching = xp.zeros(n, bool)
        self._sliding = xp.zeros(n, bool)  # touching vertices that static friction let go
        self._anchor = self.model.rest_positions.copy()  # where each touching vertex sticks
        self._pairs = None
        self._searched_at = None
        self.last_contact_force = xp.zeros(n)  # N per vertex, last step
        self._contacts = None  # (positions, their contacts): the last step's end
        self.held_apart = xp.zeros(n, bool)  # (N,) moved by self-contact, last step

    def _assemble(self) -> None:
        """The global matrix, the contact hold stiffness and (Newton) the device copy for self.model."""
        model, h = self.model, self.settings.dt
        self.matrix = system_matrix(model, h, self.attach_weight)
        membrane_diag = self.matrix.diagonal() - to_numpy(model.mass) / h**2 - to_numpy(self.attach_weight)
        self.hold_stiffness = self.settings.contact_hold * membrane_diag  # host (N,)
        if self.settings.global_step == "newton":  # Newton multiplies by the matrix on the device
            self.matrix_device = self.matrix if model.xp is np else _device_csr(self.matrix)

    def set_membrane_scale(self, stretch, shear=None) -> None:
        """Steps on with the membrane's stretch weights times `stretch` and its shear weights times
        `shear` (default: `stretch`), each a number or one per triangle (F,) (bending, mass and
        contact state unchanged); refactorises once on the kept symbolic analysis, at the next solve.

        Used to relax a drape (`engine.drape.settle`): a membrane 18-200 times softer lets the
        passes rotate cloth where the true one locks it (docs/cloth.md, "Relax, then stiffen")."""
        scales = (stretch, stretch if shear is None else shear)
        if all(np.all(to_numpy(a) == to_numpy(b)) for a, b in zip(scales, self.membrane_scale)):
            return
        base = self.base_model
        if all(np.all(to_numpy(a) == 1.0) for a in scales):
            self.model, scales = base, (1.0, 1.0)  # the caller's model itself, fields shared
        else:  # copies on the model's backend, whichever the caller's scales are on
            xp = base.xp
            stretch, shear = scales = tuple(float(a) if np.ndim(a) == 0 else xp.array(a if xp is not np else to_numpy(a), dtype=xp.float64)
                                            for a in scales)
            self.model = dataclasses.replace(base, stretch_warp=base.stretch_warp * stretch,
                                             stretch_weft=base.stretch_weft * stretch, shear=base.shear * shear)
        self.membrane_scale = scales
        self._assemble()
        self._factorise_holds(self._held)

    def _factorise_holds(self, held) -> None:
        """The global matrix with contact hold springs on `held` (N,) host bool (the factorised
        hold set, `_held`), factorised at the next solve."""
        self._held = held
        self.system.refactor(self.matrix + sp.diags(self._hold_weights(held)))

    def _change_holds(self, held) -> None:
        """The factorised hold set becomes `held` (N,) host bool: only the changed rows' diagonal
        changes (`LinearSystem.add_to_diagonal`)."""
        delta = self._hold_weights(held) - self._hold_weights(self._held)
        self._held = held
        self.system.add_to_diagonal(delta)

    def _hold_weights(self, held) -> np.ndarray:
        """(N,) host N/m: the hold springs' stiffness on `held` (N,) host bool, zero elsewhere."""
        return np.where(held, self.hold_stiffness, 0.0)

    def _project(self, x, closest, normal, active):
        """Moves active vertices out of their contact half-space; returns (x, pushed distance (N,))."""
        xp = self.model.xp
        s = rowdot(x - closest, normal) - self.settings.skin_offset
        push = xp.where(active & (s < 0), -s, 0.0)
        return x + push[:, None] * normal, push

    def step(self, state_in: ClothState, state_out: ClothState) -> None:
        """One implicit step of `settings.dt` from state_in into state_out (may be the same)."""
        model, st, xp = self.model, self.settings, self.model.xp
        h = st.dt
        x0, v0 = state_in.positions, state_in.velocities
        y = x0 + h * v0 + self.gravity_step
        inertia = model.mass[:, None] / h**2
        fixed_rhs = self.attach_weight[:, None] * model.attach_targets
        push_total = xp.zeros(model.n_vertices)
        if self.collider is not None:
            # Contact planes from the step's start (last step's end query when x0 is its result):
            # y is at most a step's motion away, and the end of the step is queried exactly.
            if self._contacts is not None and self._contacts[0] is x0:
                closest, normal, signed = self._contacts[1]
            else:
                closest, normal, signed = self.collider.contacts(x0)
            active = signed < st.skin_offset + st.contact_margin + rownorm(y - x0)
            y, push = self._project(y, closest, normal, active)
            push_total += push
        x = y
        rhs_base = inertia * y + fixed_rhs
        if self.collider is not None and st.contact_hold > 0:
            hold = self._hold = self._update_anchors(x0, y, closest, normal, signed, active)
            rhs_base = rhs_base + hold[:, None] * self._anchor
        x = self._local_global(x, rhs_base)
        let_go = xp.zeros(model.n_vertices, bool)
        if self.collider is not None and st.contact_hold > 0:
            let_go = self._slip(x, hold)
        # The global step knows nothing of the body: a badly stretched start can pull cloth
        # centimetres in one step, through a thigh. The step's motion is capped, and contacts
        # are found again where the cloth ended up.
        d = x - x0
        length = rownorm(d)[:, None]
        x = x0 + d * xp.minimum(1.0, st.max_step / xp.maximum(length, 1e-12))
        solved = x
        if self.self_thickness > 0:
            x = self._self_contact(x, x0)
            self.held_apart = (x != solved).any(1)
        if self.collider is not None:
            closest, normal, signed = self.collider.contacts(x)
            x, push = self._project(x, closest, normal, xp.ones(model.n_vertices, bool))
            push_total += push
            self.last_contact_force = model.mass * push_total / h**2
            x, stuck = self._friction(x, x0, normal, push_total)
            stopped = self._sliding & stuck  # sticks again, from where it stopped
            self._anchor = xp.where(stopped[:, None], x, self._anchor)
            self._sliding = (self._sliding & ~stopped) | let_go
            # The projected x keeps x's closest points and normals (friction moved it along the
            # skin, less than a step's motion); its distances grew by the push.
            self._contacts = (x, (closest, normal, signed + push))
        # Velocity from the solve plus the body's push; the self-contact correction only moves
        # positions (Jacobi-averaged pushes overshoot and would otherwise keep the cloth shaking).
        moved = solved + (x - solved) * (push_total > 0)[:, None] if self.self_thickness > 0 else x
        v = (moved - x0) / h * np.exp(-st.damping * h)
        state_out.positions, state_out.velocities = x, v

    def _local_global(self, x, rhs_base):
        """`iterations` local/global passes from x (N, 3); with `anderson` = m > 0, Anderson
        acceleration over the last m passes, falling back to the plain pass when the residual grows."""
        xp, m = self.model.xp, self.settings.anderson

        if self.settings.global_step == "newton":
            return self._newton(x, rhs_base)

        def g(x):
            tu, tv = membrane_targets(self.model, x, self.settings.compression_slack)
            return self.system.solve(rhs_base + self._spread @ xp.concatenate([tu, tv]))

        if m <= 0:
            for _ in range(self.settings.iterations):
                x = g(x)
            return x
        dg, df = [], []
        g_prev = f_prev = None
        norm_prev = None
        for _ in range(self.settings.iterations):
            gx = g(x)
            f = (gx - x).reshape(-1)
            norm = float(f @ f)
            if not np.isfinite(norm):
                return gx  # no least squares on NaN: the caller sees the step fail (`drape.settle` undoes it)
            if f_prev is not None:
                if norm > norm_prev:
                    dg, df = [], []
                else:
                    dg.append((gx - g_prev).reshape(-1))
                    df.append(f - f_prev)
                    dg, df = dg[-m:], df[-m:]
            g_prev, f_prev, norm_prev = gx, f, norm
            if df:
                F = xp.stack(df, 1)
                gamma = xp.linalg.lstsq(F, f, rcond=None)[0]
                x = gx - (xp.stack(dg, 1) @ gamma).reshape(gx.shape)
            else:
                x = gx
        return x

    def _newton(self, x, rhs_base):
        """`iterations` Newton steps from x (N, 3) on the step's energy 1/2 x.Ax - x.rhs(x) + c(x),
        rhs(x) = rhs_base + S targets(x) (A: the factorised matrix; see `membrane_terms`)."""
        model, xp, slack = self.model, self.model.xp, self.settings.compression_slack
        hold = self._hold[:, None]

        def a_times(v):
            return self.matrix_device @ v + hold * v

        def energy(x):
            tu, tv, stretch = membrane_terms(model, x, slack)
            ax, rhs = a_times(x), rhs_base + self._spread @ xp.concatenate([tu, tv])
            # The membrane energy is sum w |f|^2 / 2 - f . target + sum w |p|^2 / 2 over columns
            # (|q| = |f| for shear): the first two terms are in x.Ax / 2 - x.rhs.
            (_, lu, pu), (_, lv, pv) = stretch
            constant = 0.5 * float((model.stretch_warp * pu[:, 0] ** 2 + model.stretch_weft * pv[:, 0] ** 2
                                    + model.shear * (lu[:, 0] ** 2 + lv[:, 0] ** 2)).sum())
            return 0.5 * float((x * ax).sum()) - float((x * rhs).sum()) + constant, ax - rhs, stretch

        e, grad, stretch = energy(x)
        if not np.isfinite(e):  # no step exists; NaN positions tell the caller (`drape.settle` undoes it)
            return xp.full_like(x, np.nan)
        for _ in range(self.settings.iterations):
            dx = self._newton_direction(grad, stretch, a_times)
            slope, t = float((grad * dx).sum()), 1.0
            for _ in range(8):  # Armijo backtracking
                e_new, grad_new, stretch_new = energy(x + t * dx)
                if e_new <= e + 1e-4 * t * slope:
                    break
                t *= 0.5
            else:
                break  # no decrease along dx: x is as good as this step gets
            x, e, grad, stretch = x + t * dx, e_new, grad_new, stretch_new
        return x

    def _newton_direction(self, grad, stretch, a_times):
        """Solves H dx = -grad (N, 3) by preconditioned CG. H = A - S J S^T: per stretch column the
        projective weight w I is replaced by the clamped Hessian of w/2 (|f| - p)^2, i.e. A less
        w [min(1, p/|f|) (I - n n^T) + (p == |f|) n n^T] on that column (n = f/|f|)."""
        model, xp = self.model, self.model.xp
        relief = []
        for (n, length, target), w in zip(stretch, (model.stretch_warp, model.stretch_weft)):
            across = w[:, None] * xp.minimum(1.0, target / length)
            along = w[:, None] * (target == length)  # inside the free band: no stiffness along n
            relief.append((n, across, along))

        def h_times(v):
            cols = []
            for c, (n, across, along) in zip(deformation_columns(model, v), relief):
                cn = rowdot(c, n)[:, None] * n
                cols.append(across * (c - cn) + along * cn)
            return a_times(v) - self._spread @ xp.concatenate(cols)

        r = -grad
        dx = xp.zeros_like(grad)
        z = self.system.solve(r)
        p, rz = z, float((r * z).sum())
        for k in range(self.settings.newton_cg):
            hp = h_times(p)
            php = float((p * hp).sum())
            if php <= 0.0:
                break
            alpha = rz / php
            dx = dx + alpha * p
            if k == self.settings.newton_cg - 1:
                break
            r = r - alpha * hp
            z = self.system.solve(r)
            rz_new = float((r * z).sum())
            p, rz = z + (rz_new / rz) * p, rz_new
        return dx

    def _update_anchors(self, x0, y, closest, normal, signed, active):
        """Static friction for touching vertices: returns their hold weights (N,).

        A vertex that touches the skin (within contact_gap of the skin offset; it lets go beyond
        twice that, so the set does not flicker) is held by a spring w |x - a|^2 inside the
        global step to an anchor a: where it first touched, pushed out of the skin. The body so
        carries the cloth's weight and tension where they meet, instead of a projection after
        the solve that the next solve undoes. A vertex whose spring must pull harder along the
        skin than Coulomb's limit slides instead (`_slip`): it leaves the held set, and kinetic
        friction acts on its motion (`_friction`) until that stops it. The factorised held set
        follows when more than 10 % of it has changed (`_change_holds`: a low-rank update of the
        factor, or a new factorisation when many rows changed; the 10k t-shirt factorises 9 times
        in 27 steps, 15 times before the updates, 72 ms each). A sliding vertex still in the
        factorised set is pulled to its predicted position y (N, 3), out of the skin, so its hold
        carries no friction. The lag is hysteresis the stick-slip needs: following every change
        (the updates make that cheap) made a 1.5k skirt on the L body take 117 steps to rest, its
        largest step still 0.66 mm at step 100, where it rested within 100.
        """
        xp, st = self.model.xp, self.settings
        gap = signed - st.skin_offset
        touching = (gap < st.contact_gap) | (self._touching & (gap < 2.0 * st.contact_gap))
        # Vertices that keep sticking keep their anchor; any other is anchored where it starts.
        keep = touching & self._touching & ~self._sliding
        start, _ = self._project(x0, closest, normal, active)
        self._sliding &= touching
        self._anchor = xp.where(self._sliding[:, None], y, xp.where(keep[:, None], self._anchor, start))
        self._touching = touching
        self._contact_normal = normal
        host = to_numpy(touching & ~self._sliding)
        if (host != self._held).sum() > 0.1 * max(int(host.sum()), 1):
            self._change_holds(host)
        # The weights must be the factorised ones: a weight missing from the matrix but present
        # on the right-hand side would pull a vertex towards the origin.
        return xp.asarray(self._hold_weights(self._held))

    def _slip(self, x, hold):
        """(N,) bool: the held vertices at x (N, 3) to let go, whose springs pull them along the
        skin harder than mu times their push into the skin: static friction cannot hold them."""
        xp = self.model.xp
        if self.model is not self.base_model:
            # A relaxed membrane (`set_membrane_scale`) stretches under loads the true one carries;
            # cloth let go then would slide where real fabric does not: it slides once stiffened.
            return xp.zeros(len(x), bool)
        n = self._contact_normal
        d = self._anchor - x
        dn = rowdot(d, n)
        pull = rownorm(d - dn[:, None] * n)
        # Forces, N: the spring's pull along the skin against mu times the push into the skin
        # (the spring's normal part plus last step's projection force).
        normal_force = hold * xp.maximum(dn, 0.0) + self.last_contact_force
        return (hold > 0) & ~self._sliding & (hold * pull > self.model.fabric.friction * normal_force)

    def _self_contact(self, x, x0):
        """Vertex-triangle repulsion after the step's solve (see `self_collision`)."""
        # Pairs found within thickness + slack stay valid while no vertex is half the slack from
        # where it was at the search (a pair's distance changes by at most twice that): then
        # they are searched again. Measured from the search, not summed per step, a hem that
        # flaps while the rest lies still costs no search (the 10k t-shirt: 15 searches in 31 steps).
        if self._pairs is None or float(rownorm(x - self._searched_at).max()) > 0.5 * SELF_SLACK:
            self._pairs = vertex_triangle_pairs(x, self.model.faces, self.self_thickness + SELF_SLACK, self.base_model.neighbours)
            self._searched_at = x
        return repel(x, x0, self.model.faces, self._pairs, self.self_thickness, rest=self.model.rest_positions)

    def _friction(self, x, x0, normal, push):
        """Kinetic Coulomb friction on positions x (N, 3) that contact pushed `push` (N,) m out of
        the skin this step: each one's motion along the skin since x0 shrinks by up to
        mu * push (position-level, as Macklin et al. 2014). Returns (x, stuck (N,) bool: the
        pushed vertices it stopped).

        On positions, not only velocities, so that a resting vertex does not creep by the step's
        h^2 g along a slope that friction holds it on; the step's membrane solve moved it first.
        """
        xp = self.model.xp
        d = x - x0
        dt = d - rowdot(d, normal)[:, None] * normal
        slide = rownorm(dt)
        cut = xp.minimum(self.model.fabric.friction * push, slide)
        x = x - (cut / xp.maximum(slide, 1e-30))[:, None] * dt
        return x, (push > 0) & (cut >= slide)
