"""The artifact: the contract between the offline and the online half.

An artifact is a directory:

    model.json     schema version, layers (types, shapes, activations), input size,
                   preprocessing, label names, metrics, provenance, sha256 of weights.npz,
                   and the model's content hash
    weights.npz    float32 arrays (int32 for the rearrangement index), no pickle
    model.keras    the trained Keras model (for Keras users; engine tests compare to it)

`load_artifact` needs numpy only, never unpickles, and refuses an artifact whose weights
file does not match the recorded sha256 or whose arrays do not match the content hash.
"""
from __future__ import annotations

import hashlib
import json
import os
import platform
from pathlib import Path
from typing import Any, Callable

import numpy as np

from neurogrs.errors import ArtifactError, ModelError
from neurogrs.layers import layer_from_json
from neurogrs.spec import ModelSpec, Preprocessing

__all__ = ["SCHEMA", "save_artifact", "load_artifact", "read_model_json", "Artifact"]

SCHEMA = "neurogrs.artifact/1"
MODEL_JSON = "model.json"
WEIGHTS = "weights.npz"
KERAS = "model.keras"


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _library_versions() -> dict[str, str]:
    from importlib import metadata

    out = {"python": platform.python_version()}
    for pkg in ("neurogrs", "numpy", "tensorflow-cpu", "tensorflow", "keras"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            pass
    return out


def save_artifact(
    spec: ModelSpec,
    out_dir: str | os.PathLike,
    keras_save: Callable[[Path], None] | None = None,
) -> Path:
    """Write `spec` as an artifact directory; `keras_save(path)` writes model.keras."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    arrays = spec.arrays()
    weights_path = out / WEIGHTS
    np.savez(weights_path, **arrays)
    if keras_save is not None:
        keras_save(out / KERAS)
    p = spec.preprocessing
    doc: dict[str, Any] = {
        "schema": SCHEMA,
        "name": spec.name,
        "hash": spec.content_hash(),
        "input": {"n_neurons": spec.n_inputs, "dtype": "float32", "shape": [spec.n_inputs]},
        "output": {"labels": list(spec.label_names), "kind": "probabilities"},
        "preprocessing": {
            "normalize": None if p.mean is None and p.scale is None else {
                "mean": "pre.mean" if p.mean is not None else None,
                "scale": "pre.scale" if p.scale is not None else None,
                "formula": "(x - mean) * scale",
            },
            "rearrange": None if p.index is None else {
                "index": "pre.index",
                "grid": [p.grid, p.grid, 1],
                "rule": "cell i of the row-major grid holds neuron index[i]; -1 = 0",
            },
        },
        "layers": spec.architecture(),
        "summary": spec.summary(),
        "metrics": spec.metrics,
        "provenance": {**spec.provenance, "libraries": _library_versions()},
        "files": {
            "weights": {"path": WEIGHTS, "sha256": _sha256_file(weights_path)},
            "keras": KERAS if (out / KERAS).exists() else None,
        },
    }
    tmp = out / (MODEL_JSON + ".tmp")
    tmp.write_text(json.dumps(doc, indent=2, sort_keys=False) + "\n")
    tmp.replace(out / MODEL_JSON)
    return out


def read_model_json(path: str | os.PathLike) -> dict:
    """The parsed model.json of an artifact directory (no weights checked)."""
    d = Path(path)
    mj = d / MODEL_JSON
    if not d.is_dir():
        raise ArtifactError(f"{d} is not an artifact directory")
    if not mj.is_file():
        raise ArtifactError(f"{d} has no {MODEL_JSON}")
    try:
        doc = json.loads(mj.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ArtifactError(f"{mj} is not valid JSON: {exc}") from exc
    if not isinstance(doc, dict) or doc.get("schema") != SCHEMA:
        got = doc.get("schema") if isinstance(doc, dict) else None
        raise ArtifactError(f"{mj}: unknown schema {got!r} (this neurogrs reads {SCHEMA!r})")
    return doc


def _layer_from_json(i: int, d: dict, arrays: dict[str, np.ndarray]):
    try:
        return layer_from_json(d, arrays)
    except ModelError as exc:
        raise ArtifactError(f"layer {i}: {exc}") from exc


class Artifact:
    """A loaded artifact: the verified spec plus its model.json."""

    def __init__(self, path: Path, doc: dict, spec: ModelSpec) -> None:
        self.path = path
        self.doc = doc
        self.spec = spec

    @property
    def hash(self) -> str:
        return self.doc["hash"]

    @property
    def keras_path(self) -> Path | None:
        p = self.path / KERAS
        return p if p.is_file() else None

    def __repr__(self) -> str:
        return f"Artifact({str(self.path)!r}, {self.spec.name}, hash={self.hash[:12]})"


def load_artifact(path: str | os.PathLike) -> Artifact:
    """Load and verify an artifact directory (numpy only; no pickle)."""
    d = Path(path)
    doc = read_model_json(d)
    try:
        wmeta = doc["files"]["weights"]
        wpath = d / wmeta["path"]
        expected = wmeta["sha256"]
    except (KeyError, TypeError) as exc:
        raise ArtifactError(f"{d / MODEL_JSON}: missing files.weights entry") from exc
    if Path(wmeta["path"]).name != wmeta["path"]:
        raise ArtifactError(f"weights path {wmeta['path']!r} must be a plain file name")
    if not wpath.is_file():
        raise ArtifactError(f"{d} has no {wmeta['path']}")
    actual = _sha256_file(wpath)
    if actual != expected:
        raise ArtifactError(
            f"{wpath}: sha256 {actual[:16]}... does not match model.json "
            f"({str(expected)[:16]}...): the weights were altered or belong to another model"
        )
    try:
        with np.load(wpath, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
    except (ValueError, OSError) as exc:
        raise ArtifactError(f"{wpath} cannot be read without pickle: {exc}") from exc
    try:
        pre = doc["preprocessing"] or {}
        norm = pre.get("normalize") or {}
        rea = pre.get("rearrange")
        preprocessing = Preprocessing(
            n_inputs=int(doc["input"]["n_neurons"]),
            mean=arrays.get(norm["mean"]) if norm.get("mean") else None,
            scale=arrays.get(norm["scale"]) if norm.get("scale") else None,
            index=arrays.get(rea["index"]) if rea else None,
            grid=int(rea["grid"][0]) if rea else None,
        )
        layers = [_layer_from_json(i, ld, arrays) for i, ld in enumerate(doc["layers"])]
        spec = ModelSpec(
            preprocessing=preprocessing,
            layers=tuple(layers),
            label_names=tuple(doc["output"]["labels"]),
            name=str(doc.get("name", "model")),
            metrics=doc.get("metrics") or {},
            provenance=doc.get("provenance") or {},
        )
    except ModelError as exc:
        raise ArtifactError(f"{d}: {exc}") from exc
    except (KeyError, TypeError, ValueError) as exc:
        raise ArtifactError(f"{d / MODEL_JSON} is malformed: {exc!r}") from exc
    if spec.content_hash() != doc.get("hash"):
        raise ArtifactError(f"{d}: arrays do not match the recorded model hash")
    return Artifact(d, doc, spec)
