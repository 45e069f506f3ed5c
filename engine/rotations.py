"""Rotation helpers, batched over leading axes, for NumPy and CuPy alike."""

from __future__ import annotations

from engine.backend import array_namespace


def skew(v):
    """Cross-product matrices: v (..., 3) -> (..., 3, 3) with skew(v) @ x == cross(v, x)."""
    xp = array_namespace(v)
    z = xp.zeros_like(v[..., 0])
    x, y, w = v[..., 0], v[..., 1], v[..., 2]
    return xp.stack(
        [xp.stack([z, -w, y], -1), xp.stack([w, z, -x], -1), xp.stack([-y, x, z], -1)], -2
    )


def rotvec_to_matrix(rotvec):
    """Rodrigues' formula: axis-angle vectors (..., 3) in radians -> rotation matrices (..., 3, 3)."""
    xp = array_namespace(rotvec)
    theta = xp.linalg.norm(rotvec, axis=-1)[..., None, None]
    small = theta < 1e-6
    safe = xp.where(small, 1.0, theta)
    K = skew(rotvec)
    # Taylor terms near zero keep the result smooth and free of 0/0.
    a = xp.where(small, 1.0 - theta**2 / 6.0, xp.sin(safe) / safe)
    b = xp.where(small, 0.5 - theta**2 / 24.0, (1.0 - xp.cos(safe)) / safe**2)
    eye = xp.broadcast_to(xp.eye(3, dtype=rotvec.dtype), K.shape)
    return eye + a * K + b * (K @ K)


def matrix_to_rotvec(R):
    """Rotation matrices (..., 3, 3) -> axis-angle vectors (..., 3), angle in [0, pi]."""
    xp = array_namespace(R)
    cos = xp.clip((R[..., 0, 0] + R[..., 1, 1] + R[..., 2, 2] - 1.0) / 2.0, -1.0, 1.0)
    theta = xp.arccos(cos)
    w = xp.stack([R[..., 2, 1] - R[..., 1, 2], R[..., 0, 2] - R[..., 2, 0], R[..., 1, 0] - R[..., 0, 1]], -1)
    sin = xp.sin(theta)
    small = sin < 1e-6
    scale = xp.where(small, 0.5, theta / (2.0 * xp.where(small, 1.0, sin)))
    rv = w * scale[..., None]
    # Near pi the antisymmetric part vanishes: take the axis from the symmetric part.
    near_pi = (theta > 3.0)[..., None]
    S = (R + xp.swapaxes(R, -1, -2)) / 2.0 - cos[..., None, None] * xp.eye(3, dtype=R.dtype)
    col = xp.argmax(xp.abs(xp.diagonal(S, axis1=-2, axis2=-1)), axis=-1)
    axis = xp.take_along_axis(S, col[..., None, None].repeat(3, -1), axis=-1)[..., 0]
    axis = axis / xp.maximum(xp.linalg.norm(axis, axis=-1, keepdims=True), 1e-12)
    axis = axis * xp.where(xp.sum(axis * w, -1, keepdims=True) < 0, -1.0, 1.0)
    return xp.where(near_pi, axis * theta[..., None], rv)


def special_procrustes(M):
    """The rotations nearest to matrices M (..., 3, 3) in Frobenius norm (det = +1)."""
    xp = array_namespace(M)
    U, _, Vt = xp.linalg.svd(M)
    d = xp.sign(xp.linalg.det(U @ Vt))
    d = xp.where(d == 0, 1.0, d)
    U = xp.concatenate([U[..., :2], U[..., 2:] * d[..., None, None]], -1)
    return U @ Vt


def left_jacobian_inverse(rotvec):
    """d rotvec(exp(delta) R) / d delta at delta = 0, for R = exp(rotvec): (..., 3) -> (..., 3, 3).

    The inverse left Jacobian of SO(3): I - K/2 + (1/theta^2 - (1 + cos theta) / (2 theta sin theta)) K^2.
    """
    xp = array_namespace(rotvec)
    theta = xp.linalg.norm(rotvec, axis=-1)[..., None, None]
    small = theta < 1e-4
    safe = xp.where(small, 1.0, theta)
    c = xp.where(small, 1.0 / 12.0, 1.0 / safe**2 - (1.0 + xp.cos(safe)) / (2.0 * safe * xp.sin(safe)))
    K = skew(rotvec)
    eye = xp.broadcast_to(xp.eye(3, dtype=rotvec.dtype), K.shape)
    return eye - 0.5 * K + c * (K @ K)
