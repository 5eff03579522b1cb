"""Every settings class: named `...Settings`, validates on creation, round-trips via dicts.

The table below must name every settings dataclass of the product: a scan of the source
fails when one is added without being listed (so it cannot skip these checks), or when a
class still carries another suffix (Config, Options).
"""
from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

from neurogrs.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]
FOLDERS = ("neurogrs", "stream", "inference", "codegen", "replay", "pruning")

# class -> (module, keyword arguments of a valid instance, one bad field and value)
CASES = {
    "SplitSettings": ("neurogrs.splits", {}, ("mode", "sideways")),
    "TrainSettings": ("neurogrs.pruning.train", {"model": "nn1"}, ("epochs", 0)),
    "SimulationSettings": ("neurogrs.simulate", {}, ("n_neurons", 0)),
    "ServiceSettings": ("neurogrs.stream.service_config", {"sessions": ("m1",)},
                      ("deadline_s", -1.0)),
    "DashboardSettings": ("neurogrs.stream.dashboard", {}, ("port", -5)),
    "ReplaySettings": ("neurogrs.replay.player", {}, ("speed", -1.0)),
    "CreditSettings": ("neurogrs.replay.credit", {"credit": 2, "predictions": ">tcp://127.0.0.1:5556"},
                       ("credit", 0)),
    "CodegenSettings": ("neurogrs.codegen.options", {"prefix": "dec", "sparse": "dense"},
                       ("sparse", "sometimes")),
    "CompileSettings": ("neurogrs.codegen.compiler", {"werror": True, "extra_flags": ("-DX",)},
                       ("extra_flags", ("-O2 -march=native; rm",))),
    "FitSettings": ("neurogrs.pruning.fit", {"epochs": 3}, ("batch_size", 0)),
    "PruneSettings": ("neurogrs.pruning.settings", {"tau_s": 0.99}, ("tau_s", 1.5)),
    "SweepSettings": ("neurogrs.pruning.sweep", {"sessions": ["s.npz"], "trials": 2},
                      ("trials", 0)),
    "SuiteSettings": ("neurogrs.bench.suite", {"models": ("nn1",), "trials": 2}, ("trials", 0)),
    "DemoSettings": ("neurogrs.demo.settings", {}, ("neurons", 0)),
    "InferenceBenchSettings": ("neurogrs.bench.inference", {"frames": 100}, ("frames", 1)),
    "ServiceBenchSettings": ("neurogrs.bench.service", {"artifact": "art"}, ("engine", "gpu")),
    "NwbSelectionSettings": ("neurogrs.nwb", {"traces": "RoiResponseSeries"}, ("plane", "")),
    "CrossSessionSettings": ("neurogrs.bench.crosssession", {"models": ("nn1", "cnn1")},
                             ("frames", 10)),
}


def _settings_classes_in_source() -> dict[str, str]:
    found = {}
    for folder in FOLDERS:
        for path in (ROOT / folder).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.ClassDef) and node.name.endswith(
                        ("Settings", "Config", "Options")):
                    found[node.name] = path.relative_to(ROOT).as_posix()
    return found


def test_every_settings_class_is_listed_and_named_settings():
    found = _settings_classes_in_source()
    assert set(found) == set(CASES), (set(found) ^ set(CASES))
    wrong = sorted(n for n in found if not n.endswith("Settings"))
    assert not wrong, f"settings classes must end in 'Settings': {wrong}"


@pytest.mark.parametrize("name", sorted(CASES))
def test_round_trips_and_refuses_bad_values(name):
    module, kwargs, bad = CASES[name]
    cls = getattr(importlib.import_module(module), name)
    s = cls(**kwargs)
    d = s.to_dict()
    assert cls.from_dict(d).to_dict() == d
    field, value = bad
    with pytest.raises(ConfigError, match=field):
        cls(**{**kwargs, field: value})
