import json

import numpy as np
import pytest

from fitroom.cli import main


@pytest.fixture(scope="module")
def avatar_file(tmp_path_factory, body_model_cpu):
    """An avatar.json of a body between sizes M and L (made from a shape, not a photo)."""
    from assets.procedural_garments import reference_body

    shape, _ = reference_body(body_model_cpu, "L", "female")
    m = body_model_cpu
    n = len(m.phenotype_labels)
    doc = {
        "format": "fitroom.avatar/1",
        "sex": "female",
        "shape": {"phenotypes": dict(zip(m.phenotype_labels, shape[:n].tolist())),
                  "local_changes": dict(zip(m.local_change_labels, shape[n:].tolist()))},
    }
    path = tmp_path_factory.mktemp("avatar") / "avatar.json"
    path.write_text(json.dumps(doc))
    return path


def test_drape_prints_the_json_and_writes_the_look(avatar_file, tmp_path, capsys):
    look, fitmap = tmp_path / "look.glb", tmp_path / "fitmap.png"
    code = main(["drape", "--avatar", str(avatar_file), "--garment", "skirt", "--size", "M", "--fabric", "denim",
                 "-o", str(look), "--fitmap", str(fitmap), "--vertices", "1200", "--json"])
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    for key in ("seconds", "substeps", "converged", "max_penetration_mm", "p99_penetration_mm", "self_intersections",
                "strain_p50", "strain_p95", "ease_cm", "recommended_size"):
        assert key in out
    assert out["max_penetration_mm"] <= 2.0
    assert 95.0 < out["strain_p50"] < 130.0
    assert set(out["ease_cm"]) == {"waist", "hip"}
    assert out["recommended_size"] in ("L", "XL")  # the body is a size L
    assert look.read_bytes()[:4] == b"glTF" and fitmap.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    import trimesh

    scene = trimesh.load(str(look))
    assert len(scene.geometry) == 2


def test_recommend_ranks_all_sizes_with_reasons(avatar_file, capsys):
    assert main(["recommend", "--avatar", str(avatar_file), "--garment", "tshirt", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert [s["size"] for s in out["sizes"]][0] == out["recommended_size"] == "L"
    reasons = {s["size"]: s["reason"] for s in out["sizes"]}
    assert "too tight at the chest" in reasons["XS"]
    assert reasons["L"].startswith("L: chest ease")


@pytest.mark.parametrize("args, words", [
    (["--garment", "cape"], "cape"),
    (["--garment", "/nonexistent/coat.glb"], "coat.glb"),
    (["--garment", "skirt", "--fabric", "tweed"], "tweed"),
    (["--garment", "skirt", "--size", "XXXL"], "XXXL"),
])
def test_bad_drape_inputs_exit_2_with_one_line(avatar_file, tmp_path, capsys, args, words):
    code = main(["drape", "--avatar", str(avatar_file), "-o", str(tmp_path / "look.glb"), *args])
    err = capsys.readouterr().err
    assert code == 2 and words in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "look.glb").exists()


def test_a_brand_garment_file_drapes_from_its_reference_body(avatar_file, body_model_cpu, tmp_path, capsys):
    from assets.procedural_garments import procedural_garment
    from avatar.glb_export import write_body_glb
    from avatar.mesh_io import write_obj

    g = procedural_garment(body_model_cpu, "skirt", "M", "female", target_vertices=1200)
    write_obj(tmp_path / "skirt.obj", g.vertices, g.faces)
    write_body_glb(tmp_path / "ref.glb", g.body_vertices, np.asarray(body_model_cpu.faces))
    common = ["--avatar", str(avatar_file), "--garment", str(tmp_path / "skirt.obj"), "--reference-body", str(tmp_path / "ref.glb")]
    assert main(["recommend", *common, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert [s["size"] for s in out["sizes"]] == ["M"]
    assert out["sizes"][0]["ease_cm"]["hip"] < 6.0  # made for a size M hip, worn on an L body
    assert out["reference_body"] == {"topology": "anny"}
    assert main(["drape", *common, "-o", str(tmp_path / "look.glb"), "--json"]) == 0
    look = json.loads(capsys.readouterr().out)
    assert look["garment"] == "custom" and look["max_penetration_mm"] <= 2.0 and look["self_intersections"] == 0
    assert look["reference_body"] == {"topology": "anny"}


def test_a_reference_body_in_another_topology_is_registered(avatar_file, body_model_cpu, tmp_path, capsys):
    """A brand's body mesh (here the skirt's reference body remeshed: 5000 vertices in another
    order) is registered; the drape and the advice match those from the Anny-topology body."""
    import fast_simplification
    import trimesh.remesh

    from assets.procedural_garments import procedural_garment
    from avatar.mesh_io import write_obj

    g = procedural_garment(body_model_cpu, "skirt", "M", "female", target_vertices=1200)
    write_obj(tmp_path / "skirt.obj", g.vertices, g.faces)
    sv, sf = trimesh.remesh.subdivide(g.body_vertices, np.asarray(body_model_cpu.faces))
    v, f = fast_simplification.simplify(sv.astype(np.float32), sf.astype(np.int32), target_count=10000)
    order = np.random.default_rng(0).permutation(len(v))
    write_obj(tmp_path / "brand_body.obj", v[order], np.argsort(order)[f])
    common = ["--avatar", str(avatar_file), "--garment", str(tmp_path / "skirt.obj"),
              "--reference-body", str(tmp_path / "brand_body.obj")]
    assert main(["drape", *common, "-o", str(tmp_path / "look.glb"), "--json"]) == 0
    look = json.loads(capsys.readouterr().out)
    ref = look["reference_body"]
    assert ref["topology"] == "registered"
    for direction in ("target_to_model", "model_to_target"):
        assert ref["residual_mm"][direction]["p95"] <= 4.0 and ref["residual_mm"][direction]["mean"] <= 1.5
    assert look["garment"] == "custom" and look["max_penetration_mm"] <= 2.0 and look["self_intersections"] == 0
    assert main(["recommend", *common, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["reference_body"]["topology"] == "registered"
    assert [s["size"] for s in out["sizes"]] == ["M"] and out["sizes"][0]["ease_cm"]["hip"] < 6.0


def test_a_reference_body_that_is_no_body_is_refused(avatar_file, tmp_path, capsys):
    import trimesh

    from avatar.mesh_io import write_obj

    box = trimesh.creation.box(extents=[0.4, 1.7, 0.3])
    write_obj(tmp_path / "box.obj", np.asarray(box.vertices) + [0, 0.85, 0], np.asarray(box.faces))
    write_obj(tmp_path / "garment.obj", np.asarray(box.vertices) * 1.1 + [0, 0.85, 0], np.asarray(box.faces))
    code = main(["drape", "--avatar", str(avatar_file), "--garment", str(tmp_path / "garment.obj"),
                 "--reference-body", str(tmp_path / "box.obj"), "-o", str(tmp_path / "look.glb")])
    err = capsys.readouterr().err
    assert code == 2 and "box.obj does not look like a whole human body" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "look.glb").exists()
