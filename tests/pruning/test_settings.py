import pytest

from neurogrs.errors import ConfigError
from neurogrs.pruning.settings import PruneSettings


def test_paper_defaults():
    s = PruneSettings()
    assert (s.tau_s, s.tau_t, s.tau_q) == (0.985, 0.995, 0.990)
    assert (s.retrain_epochs, s.batch_size, s.learning_rate) == (50, 32, 1e-3)
    assert (s.min_units, s.theta, s.theta_step, s.decimals) == (2, 0.001, 0.001, 4)
    assert s.metric == "balanced_accuracy" and s.split == "blocked"
    assert s.dropout_scale(0) == 1.0 and s.dropout_scale(2) == pytest.approx(0.95 ** 2)


def test_round_trip():
    s = PruneSettings(tau_s=0.9, metric="accuracy", seed=7)
    assert PruneSettings.from_dict(s.to_dict()) == s


@pytest.mark.parametrize("field, value, words", [
    ("tau_s", 0.0, "tau_s must be a number in (0.0, 1.0]"),
    ("tau_t", 1.5, "tau_t"),
    ("retrain_epochs", 0, "retrain_epochs must be an integer in [1, 100000]"),
    ("min_units", 2.5, "min_units"),
    ("decimals", 9, "decimals"),
    ("metric", "f1", "metric must be one of"),
    ("split", "random", "split must be one of"),
    ("stage_t", "first", "stage_t must be one of ('layerwise', 'global', 'per_layer')"),
    ("seed", True, "seed"),
])
def test_bad_values_name_field_value_and_range(field, value, words):
    with pytest.raises(ConfigError) as exc:
        PruneSettings(**{field: value})
    assert words in str(exc.value) and repr(value) in str(exc.value)


def test_toml_file_then_flags_override(tmp_path):
    cfg = tmp_path / "p.toml"
    cfg.write_text('tau_s = 0.97\nretrain_epochs = 5\nmetric = "accuracy"\n')
    s = PruneSettings.from_file(cfg, retrain_epochs=3, tau_t=None)
    assert (s.tau_s, s.retrain_epochs, s.metric, s.tau_t) == (0.97, 3, "accuracy", 0.995)


def test_toml_unknown_key_and_bad_file(tmp_path):
    cfg = tmp_path / "p.toml"
    cfg.write_text("tau_x = 0.9\n")
    with pytest.raises(ConfigError, match=r"unknown prune setting\(s\) \['tau_x'\]"):
        PruneSettings.from_file(cfg)
    cfg.write_text("tau_s = = 1\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        PruneSettings.from_file(cfg)
    with pytest.raises(ConfigError, match="cannot be read"):
        PruneSettings.from_file(tmp_path / "missing.toml")
    cfg.write_text("tau_s = 2.0\n")
    with pytest.raises(ConfigError, match="tau_s"):
        PruneSettings.from_file(cfg)


def test_stage_t_reading_default_toml_flag_and_round_trip(tmp_path):
    from neurogrs.cli import build_parser
    from neurogrs.pruning.cli import settings_from_args

    assert PruneSettings().stage_t == "layerwise"  # the authors' code (docs/pruning.md)
    cfg = tmp_path / "p.toml"
    cfg.write_text('stage_t = "global"\n')
    assert PruneSettings.from_file(cfg).stage_t == "global"
    args = build_parser().parse_args(["prune", "s.npz", "--out", "o", "--config", str(cfg),
                                      "--stage-t", "per_layer"])
    s = settings_from_args(args)
    assert s.stage_t == "per_layer"
    assert PruneSettings.from_dict(s.to_dict()) == s
