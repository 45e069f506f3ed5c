"""What the cloth collides with: a body mesh (any pose) or an analytic sphere.

A collider answers one question for cloth positions x (N, 3): the closest point on its surface,
the outward normal there and the signed distance (m, positive outside). The solver turns the
answer into contact half-spaces held for one time step.
"""

from __future__ import annotations

from engine.backend import array_namespace, rownorm
from engine.mesh_queries import SurfaceQuery


class MeshCollider:
    """A triangle mesh (the avatar) as a collider.

    vertices : (V, 3), faces : (F, 3). Each query finds the nearest body vertex by the surface's
    voxel lookup (`SurfaceQuery.lookup_nearest`) and the exact closest point on the triangles
    around it; `set_pose(vertices)` takes the body in a new pose (same topology) and rebuilds the
    lookup, so contacts stay right in any pose.
    """

    def __init__(self, vertices, faces):
        self.query = SurfaceQuery(vertices, faces)

    def set_pose(self, vertices) -> None:
        self.query.reset(vertices)

    def contacts(self, x):
        """(closest (N, 3), normal (N, 3), signed distance (N,)) for cloth positions x (N, 3)."""
        closest, normal, signed, _, _ = self.query.closest(x, self.query.lookup_nearest(x))
        return closest, normal, signed


class SphereCollider:
    """A sphere: centre (3,) m, radius m."""

    def __init__(self, centre, radius: float):
        self.centre = centre
        self.radius = float(radius)

    def contacts(self, x):
        xp = array_namespace(x)
        d = x - xp.asarray(self.centre, dtype=x.dtype)
        r = rownorm(d)
        n = d / xp.maximum(r, 1e-12)[:, None]
        return xp.asarray(self.centre, dtype=x.dtype) + self.radius * n, n, r - self.radius
