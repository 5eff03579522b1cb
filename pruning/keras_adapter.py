"""The one gate between Keras models and neurogrs.

It converts a Keras Sequential into a `ModelSpec` and back (the artifact's model.keras, the
Keras reference in tests and benchmarks), and loads and checks user-supplied `.keras`
candidates, reporting every problem at once in one `ModelError`. It does not hand Keras
itself to other modules; training is `neurogrs.pruning.fit` (TensorFlow, no Keras).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Sequence

from neurogrs.errors import ModelError
from neurogrs.layers import is_stateful
from neurogrs.pruning.tf_quiet import import_tensorflow
from neurogrs.spec import (
    Activation,
    Conv2D,
    Dense,
    Dropout,
    Flatten,
    MaxPool2D,
    ModelSpec,
    Preprocessing,
)

__all__ = [
    "to_keras",
    "from_keras",
    "check_model",
    "load_candidate",
    "SUPPORTED_LAYERS",
]

def _keras():
    """Keras, imported quietly; private: other modules use this gate's functions."""
    import_tensorflow()
    import keras

    return keras


SUPPORTED_LAYERS = ("Dense", "Conv2D", "MaxPooling2D", "Flatten", "Dropout", "ReLU",
                    "Softmax", "Activation", "InputLayer")


def to_keras(spec: ModelSpec):
    """A Keras Sequential computing the same function as `spec` after preprocessing.

    Its input is the preprocessed shape ([N] for MLPs, [n, n, 1] for CNNs): apply
    `spec.preprocessing.apply(frames)` before calling it.
    """
    stateful = [f"layer {i} ({type(l).__name__})" for i, l in enumerate(spec.layers)
                if is_stateful(l)]
    if stateful:  # Keras would silently drop them and compute another function
        raise ModelError(f"{spec.name}: stateful layers have no Keras equivalent here: "
                         f"{', '.join(stateful)} (temporal models are exported as artifacts "
                         "only; docs/temporal.md)")
    k = _keras()
    layers: list[Any] = [k.Input(shape=spec.preprocessing.input_shape)]
    for layer in spec.layers:
        if isinstance(layer, Dense):
            layers.append(k.layers.Dense(layer.units, activation=layer.activation))
        elif isinstance(layer, Conv2D):
            layers.append(k.layers.Conv2D(layer.filters, tuple(layer.kernel.shape[:2]),
                                          strides=layer.strides, activation=layer.activation,
                                          padding="valid"))
        elif isinstance(layer, MaxPool2D):
            layers.append(k.layers.MaxPooling2D(layer.pool_size, strides=layer.strides,
                                                padding="valid"))
        elif isinstance(layer, Flatten):
            layers.append(k.layers.Flatten())
        elif isinstance(layer, Dropout):
            layers.append(k.layers.Dropout(layer.rate))
        elif isinstance(layer, Activation):
            layers.append(k.layers.Activation(layer.activation))
    model = k.Sequential(layers)
    weighted = [l for _, l in spec.weighted_layers()]
    klayers = [l for l in model.layers if l.get_weights()]
    for kl, sl in zip(klayers, weighted):
        kl.set_weights([sl.kernel, sl.bias])
    return model


def _activation_name(cfg_act: Any) -> str | None:
    if cfg_act is None:
        return "linear"
    if isinstance(cfg_act, str):
        return cfg_act
    if isinstance(cfg_act, dict):  # serialised activation objects
        return cfg_act.get("config", {}).get("name") or cfg_act.get("class_name")
    return getattr(cfg_act, "__name__", None)


def check_model(model) -> list[str]:
    """Every reason `model` cannot become a ModelSpec (empty list when it can)."""
    k = _keras()
    problems: list[str] = []
    if not isinstance(model, k.Sequential):
        return [f"model must be a keras Sequential, got {type(model).__name__}"]
    for i, layer in enumerate(model.layers):
        cls = type(layer).__name__
        cfg = layer.get_config()
        where = f"layer {i} {layer.name!r} ({cls})"
        if cls not in SUPPORTED_LAYERS:
            problems.append(f"{where}: unsupported layer type; supported: "
                            f"{', '.join(SUPPORTED_LAYERS[:-1])}")
            continue
        if "activation" in cfg and _activation_name(cfg["activation"]) not in ("linear", "relu", "softmax"):
            problems.append(f"{where}: activation {_activation_name(cfg['activation'])!r} "
                            "is not supported (linear, relu, softmax)")
        if cls in ("Conv2D", "MaxPooling2D"):
            if cfg.get("padding") != "valid":
                problems.append(f"{where}: padding {cfg.get('padding')!r} (only 'valid')")
            if cfg.get("data_format", "channels_last") != "channels_last":
                problems.append(f"{where}: data_format must be channels_last")
        if cls == "Conv2D":
            if tuple(cfg.get("dilation_rate", (1, 1))) != (1, 1) or cfg.get("groups", 1) != 1:
                problems.append(f"{where}: dilation and groups are not supported")
        if cls in ("Dense", "Conv2D") and not cfg.get("use_bias", True):
            problems.append(f"{where}: use_bias=False is not supported")
        if cls == "ReLU" and (cfg.get("max_value") is not None or cfg.get("negative_slope")
                              or cfg.get("threshold")):
            problems.append(f"{where}: only a plain ReLU is supported")
        if cls == "Softmax" and cfg.get("axis", -1) != -1:
            problems.append(f"{where}: softmax must be over the last axis")
    return problems


def from_keras(
    model,
    preprocessing: Preprocessing,
    label_names: Sequence[str] | None = None,
    name: str = "model",
    metrics: dict | None = None,
    provenance: dict | None = None,
) -> ModelSpec:
    """Convert a trained Keras Sequential into a ModelSpec (all problems reported at once)."""
    problems = check_model(model)
    if problems:
        raise ModelError("the Keras model cannot be exported:\n  - " + "\n  - ".join(problems))
    layers: list[Any] = []
    for layer in model.layers:
        cls = type(layer).__name__
        cfg = layer.get_config()
        if cls == "Dense":
            kern, bias = layer.get_weights()
            layers.append(Dense(kern, bias, _activation_name(cfg.get("activation"))))
        elif cls == "Conv2D":
            kern, bias = layer.get_weights()
            layers.append(Conv2D(kern, bias, tuple(cfg["strides"]),
                                 _activation_name(cfg.get("activation"))))
        elif cls == "MaxPooling2D":
            layers.append(MaxPool2D(tuple(cfg["pool_size"]), tuple(cfg["strides"] or cfg["pool_size"])))
        elif cls == "Flatten":
            layers.append(Flatten())
        elif cls == "Dropout":
            layers.append(Dropout(float(cfg.get("rate", 0.0))))
        elif cls == "ReLU":
            layers.append(Activation("relu"))
        elif cls == "Softmax":
            layers.append(Activation("softmax"))
        elif cls == "Activation":
            layers.append(Activation(_activation_name(cfg.get("activation"))))
    n_out = int(model.outputs[0].shape[-1])
    labels = tuple(label_names) if label_names is not None else tuple(str(i) for i in range(n_out))
    return ModelSpec(preprocessing, tuple(layers), labels, name=name,
                     metrics=metrics or {}, provenance=provenance or {})


def load_candidate(path: str | os.PathLike):
    """Load a user's `.keras` Sequential candidate and check it (safe mode, no lambdas)."""
    p = Path(path)
    if not p.is_file():
        raise ModelError(f"{p}: no such file")
    if p.suffix != ".keras":
        raise ModelError(f"{p}: candidates must be Keras 3 '.keras' files")
    k = _keras()
    try:
        model = k.saving.load_model(p, compile=False, safe_mode=True)
    except Exception as exc:  # Keras raises many types here; translate at the gate
        raise ModelError(f"{p}: cannot be loaded as a Keras model: {exc}") from exc
    problems = check_model(model)
    if problems:
        raise ModelError(f"{p} cannot be used as a candidate:\n  - " + "\n  - ".join(problems))
    return model
