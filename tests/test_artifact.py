"""Artifact: round trip, numpy-only loading, tamper and malformed-file refusal."""
import json
import subprocess
import sys

import numpy as np
import pytest

from neurogrs.artifact import load_artifact, save_artifact
from neurogrs.errors import ArtifactError
from neurogrs.spec import forward
from neurogrs.zoo import init_spec


@pytest.fixture
def art(tmp_path):
    spec = init_spec("cnn2", 30, np.random.default_rng(0),
                     positions=np.random.default_rng(1).uniform(0, 100, (30, 2)), random_bias=True)
    return spec, save_artifact(spec, tmp_path / "a")


def test_round_trip_is_exact(art):
    spec, path = art
    loaded = load_artifact(path)
    x = np.random.default_rng(3).normal(size=(5, 30)).astype(np.float32)
    assert np.array_equal(forward(loaded.spec, x), forward(spec, x))
    assert loaded.hash == spec.content_hash()
    doc = json.loads((path / "model.json").read_text())
    assert doc["schema"] == "neurogrs.artifact/1"
    assert doc["input"]["n_neurons"] == 30
    assert doc["preprocessing"]["rearrange"]["grid"] == [6, 6, 1]
    assert [l["type"] for l in doc["layers"]][:3] == ["conv2d", "maxpool2d", "conv2d"]
    assert len(doc["files"]["weights"]["sha256"]) == 64


def test_tampered_weights_are_refused(art, tmp_path):
    _, path = art
    with np.load(path / "weights.npz") as z:
        arrays = {k: z[k] for k in z.files}
    arrays["layer0.kernel"] = arrays["layer0.kernel"] * 1.01
    np.savez(path / "weights.npz", **arrays)
    with pytest.raises(ArtifactError, match="does not match model.json"):
        load_artifact(path)


def test_weights_consistent_with_sha_but_not_with_hash_are_refused(art):
    _, path = art
    with np.load(path / "weights.npz") as z:
        arrays = {k: z[k] for k in z.files}
    arrays["layer0.bias"] = arrays["layer0.bias"] + 1
    np.savez(path / "weights.npz", **arrays)
    doc = json.loads((path / "model.json").read_text())
    import hashlib
    doc["files"]["weights"]["sha256"] = hashlib.sha256((path / "weights.npz").read_bytes()).hexdigest()
    (path / "model.json").write_text(json.dumps(doc))
    with pytest.raises(ArtifactError, match="model hash"):
        load_artifact(path)


def test_pickled_weights_are_refused(art):
    _, path = art
    np.savez(path / "weights.npz", **{"layer0.kernel": np.array([{"a": 1}], dtype=object)})
    doc = json.loads((path / "model.json").read_text())
    import hashlib
    doc["files"]["weights"]["sha256"] = hashlib.sha256((path / "weights.npz").read_bytes()).hexdigest()
    (path / "model.json").write_text(json.dumps(doc))
    with pytest.raises(ArtifactError, match="without pickle"):
        load_artifact(path)


@pytest.mark.parametrize("content, match", [
    ("{not json", "not valid JSON"),
    ('{"schema": "neurogrs.artifact/99"}', "unknown schema"),
    ("[]", "unknown schema"),
])
def test_malformed_model_json(art, content, match):
    _, path = art
    (path / "model.json").write_text(content)
    with pytest.raises(ArtifactError, match=match):
        load_artifact(path)


def test_missing_directory_and_files(tmp_path, art):
    with pytest.raises(ArtifactError, match="not an artifact directory"):
        load_artifact(tmp_path / "nope")
    _, path = art
    (path / "weights.npz").unlink()
    with pytest.raises(ArtifactError, match="has no weights.npz"):
        load_artifact(path)


def test_unknown_layer_type_is_named(art):
    _, path = art
    doc = json.loads((path / "model.json").read_text())
    doc["layers"][1]["type"] = "lstm"
    (path / "model.json").write_text(json.dumps(doc))
    with pytest.raises(ArtifactError, match="unknown layer type 'lstm'"):
        load_artifact(path)


def test_loader_needs_numpy_only(art):
    _, path = art
    code = (
        "import sys; from neurogrs.artifact import load_artifact; "
        f"a = load_artifact({str(path)!r}); "
        "bad = [m for m in ('tensorflow', 'keras') if m in sys.modules]; "
        "print('LOADED', a.spec.n_inputs, bad)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "LOADED 30 []" in out.stdout
