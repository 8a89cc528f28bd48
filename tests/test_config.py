"""Config loading: typed sections, --set overrides, extends, and every shipped config in configs/ is valid."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from phylocl.config import TrainConfig, load_config
from phylocl.configtools import apply_overrides, parse_override
from phylocl.errors import InputError
from phylocl.models.registry import get_config

REPO = Path(__file__).resolve().parents[1]
CONFIGS = sorted((REPO / "configs").glob("*.yaml"))


def test_defaults_and_overrides_are_typed():
    cfg = load_config(None, ["optim.lr=3e-4", "data.batch_size=32", "optim.betas=[0.8, 0.9]", "cache.enabled=true",
                             "cache.token_budget=null", "loss.name=flatnce", "model.overrides={dropout: 0.2}"])
    assert isinstance(cfg, TrainConfig)
    assert cfg.optim.lr == pytest.approx(3e-4) and isinstance(cfg.optim.lr, float)
    assert cfg.data.batch_size == 32 and cfg.optim.betas == (0.8, 0.9)
    assert cfg.cache.enabled is True and cfg.cache.token_budget is None
    assert cfg.loss.name == "flatnce" and cfg.model.overrides == {"dropout": 0.2}


@pytest.mark.parametrize("item, words", [
    ("optim.lr=abc", "optim.lr"),
    ("optim.lrr=1", "optim.lrr"),
    ("loss.name=hinge", "loss.name"),
    ("loss.temperature=0", "temperature"),
    ("data.batch_size=1.5", "data.batch_size"),
    ("cache.enabled=maybe", "cache.enabled"),
    ("nosection=1", "nosection"),
    ("missing-equals", "key=value"),
])
def test_bad_overrides_name_the_key(item, words):
    with pytest.raises(InputError) as err:
        load_config(None, [item])
    assert words in str(err.value)


def test_parse_override_reads_yaml_scalars():
    assert parse_override("a.b=3") == (["a", "b"], 3)
    assert parse_override("a=3e-4") == (["a"], 3e-4)
    assert parse_override("a=null") == (["a"], None)
    assert parse_override("a=[1, 2]") == (["a"], [1, 2])
    assert parse_override("a=text") == (["a"], "text")
    assert apply_overrides({"x": {"y": 1}}, ["x.z=2"]) == {"x": {"y": 1, "z": 2}}


def test_extends_merges_sections_and_reports_problems(tmp_path):
    (tmp_path / "base.yaml").write_text("loss:\n  name: infonce\n  temperature: 0.05\noptim:\n  lr: 0.01\n")
    (tmp_path / "child.yaml").write_text("extends: base.yaml\nloss:\n  name: flatnce\n")
    cfg = load_config(tmp_path / "child.yaml")
    assert cfg.loss.name == "flatnce" and cfg.loss.temperature == pytest.approx(0.05)
    assert cfg.optim.lr == pytest.approx(0.01)
    (tmp_path / "loop.yaml").write_text("extends: loop.yaml\n")
    with pytest.raises(InputError, match="cycle"):
        load_config(tmp_path / "loop.yaml")
    (tmp_path / "bad.yaml").write_text("loss:\n  name: [unclosed\n")
    with pytest.raises(InputError) as err:
        load_config(tmp_path / "bad.yaml")
    assert err.value.line is not None and "bad.yaml" in str(err.value)
    with pytest.raises(InputError, match="not found"):
        load_config(tmp_path / "absent.yaml")


@pytest.mark.parametrize("path", CONFIGS, ids=[p.stem for p in CONFIGS])
def test_every_shipped_config_is_valid(path):
    if path.stem.startswith("compare-"):  # a compare grid plus the training config every cell starts from
        from phylocl.workflows.compare_config import load_compare_config

        grid, cfg = load_compare_config(path)
        assert grid.batch_sizes and grid.seeds
    else:
        cfg = load_config(path)
    get_config(cfg.model.name, **cfg.model.overrides)  # the model config resolves too
    assert cfg.trainer.max_steps >= 1


def test_config_errors_name_the_line_of_the_yaml_key(tmp_path):
    """Located errors: file and line of the bad key or value, of the section for a section-level check; none for
    a value that came from --set."""
    path = tmp_path / "c.yaml"
    cases = [
        ("data:\n  max_len: 64\noptim:\n  lr: abc\n", 4, "optim.lr: expected a number"),
        ("optim:\n  lr: 0.001\n  lrr: 1\n", 3, "unknown key(s) optim.lrr"),
        ("trainer:\n  max_steps: 10\neval:\n  ks: [1, 10]\n  monitor: foo\n", 3, "eval.monitor must be one of"),
        ("data:\n  batch_size: [1]\n", 2, "data.batch_size"),
    ]
    for text, line, message in cases:
        path.write_text(text)
        with pytest.raises(InputError) as err:
            load_config(path)
        assert err.value.line == line and err.value.path == str(path) and message in str(err.value), text
        assert str(err.value).startswith(f"{path}:{line}: invalid config: ")
    path.write_text("optim:\n  lr: 0.001\n")
    with pytest.raises(InputError) as err:
        load_config(path, ["optim.lr=abc"])
    assert err.value.line is None and "optim.lr: expected a number, got 'abc'" in str(err.value)


def test_yaml_files_read_exponents_as_numbers_and_refuse_repeated_keys_and_binary(tmp_path):
    """``lr: 1e-3`` in a file is the number ``--set optim.lr=1e-3`` gives (YAML 1.1 made it a string, refused as
    "expected a number"); a section given twice is refused naming both lines (the first was silently dropped); a
    file that is not UTF-8 and a folder are one InputError each (a traceback and "not found" before)."""
    (tmp_path / "lr.yaml").write_text("optim:\n  lr: 1e-3\n  weight_decay: 5E-2\ntrainer:\n  max_steps: 7\n")
    cfg = load_config(tmp_path / "lr.yaml", [])
    assert cfg.optim.lr == 1e-3 and cfg.optim.weight_decay == 0.05 and cfg.trainer.max_steps == 7
    assert load_config(None, ["optim.lr=1e-3"]).optim.lr == cfg.optim.lr
    (tmp_path / "dup.yaml").write_text("optim:\n  lr: 0.1\ntrainer:\n  max_steps: 7\noptim:\n  weight_decay: 0.0\n")
    with pytest.raises(InputError, match=r"the key 'optim' appears twice \(first on line 1\)") as info:
        load_config(tmp_path / "dup.yaml", [])
    assert info.value.line == 5
    (tmp_path / "bin.yaml").write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(InputError, match="not a text .UTF-8. file: byte 0xff at offset 0"):
        load_config(tmp_path / "bin.yaml", [])
    with pytest.raises(InputError, match="is a folder; --config takes a YAML file"):
        load_config(tmp_path, [])


@pytest.mark.parametrize("item", ["data.max_len=99999999999999999999", "data.max_len=1e30", "trainer.seed=-1e20"])
def test_integers_beyond_what_numpy_and_torch_hold_are_refused_naming_the_key(item):
    key = item.split("=")[0]
    with pytest.raises(InputError, match=f"{key}: .* is out of range"):
        load_config(None, [item])


@pytest.mark.parametrize("item, message", [
    ("trainer.seed=-1", r"trainer.seed must be in \[0, 2\*\*32 - 1\], got -1"),
    ("trainer.seed=4294967296", r"trainer.seed must be in \[0, 2\*\*32 - 1\], got 4294967296"),
    ("data.seed=-1", "data.seed must be >= 0, got -1"),
    ("loss.chunk_size=0", "loss.chunk_size must be >= 1 or null, got 0")])
def test_values_that_crashed_training_with_a_traceback_are_refused_in_the_config(item, message):
    """``phylocl train --set trainer.seed=-1`` (Lightning's seed_everything), ``data.seed=-1`` (numpy's generators)
    and ``loss.chunk_size=0`` (the loss's constructor) ended in a traceback once training was set up."""
    with pytest.raises(InputError, match=message):
        load_config(None, [item])


def test_a_set_that_cannot_apply_is_the_command_lines_error_not_the_files(tmp_path):
    (tmp_path / "s.yaml").write_text("trainer: 5\n")
    with pytest.raises(InputError) as info:
        load_config(tmp_path / "s.yaml", ["trainer.max_steps=3"])
    assert info.value.path is None and "'trainer' is not a section (the config gives it the value 5)" in str(info.value)
    with pytest.raises(InputError) as info:
        load_config(tmp_path / "s.yaml", ["optim.lr"])
    assert info.value.path is None and "--set expects key=value, got 'optim.lr'" in str(info.value)


def test_a_null_mapping_is_an_empty_one():
    assert load_config(None, ["data.holdout=null"]).data.holdout == {}
    assert load_config(None, ["data.holdout={}"]).data.holdout == {}


@pytest.mark.parametrize("item, message", [
    ("trainer.checkpoint_every_n_steps=2.5", "trainer.checkpoint_every_n_steps: expected an integer or null, got 2.5"),
    ("trainer.checkpoint_every_n_steps=true", "trainer.checkpoint_every_n_steps: expected an integer or null, got True"),
    ("optim.grad_clip=abc", "optim.grad_clip: expected a number or null, got 'abc'"),
    ("loss.chunk_size=1e40", "loss.chunk_size: 1"),  # out of range: that message, not the type's
])
def test_a_bad_optional_value_says_what_it_takes(item, message):
    """Optional settings said ``2.5 is not a valid Optional`` (typing's name for the union)."""
    with pytest.raises(InputError) as err:
        load_config(None, [item])
    assert message in str(err.value) and "Optional" not in str(err.value)


@pytest.mark.parametrize("item", ["loss.temperature=.nan", "loss.temperature=.inf", "optim.lr=.nan",
                                  "optim.weight_decay=.nan", "optim.grad_clip=.nan", "loss.moe_balance_weight=.nan",
                                  "data.alpha=.inf", "data.fractions=[.nan, 0.5, 0.5]",
                                  "loss.temperature=1" + "0" * 400])
def test_numbers_that_are_not_finite_are_refused_naming_the_key(item):
    """YAML's ``.nan`` and ``.inf`` passed the ``x <= 0`` checks: ``phylocl train --set loss.temperature=.nan``
    (or ``optim.lr=.nan``, ``data.alpha=.inf`` with distant pairs) ended in a traceback once training was set up,
    ``optim.weight_decay=.nan`` in "training diverged, lower optim.lr" at step 2; an integer beyond the float range
    raised OverflowError."""
    key = item.split("=")[0]
    with pytest.raises(InputError, match=f"invalid config: {re.escape(key)}(\\[0\\])?: expected a finite number"):
        load_config(None, [item])


@pytest.mark.parametrize("item, message", [
    ("optim.eps=0", "optim.eps must be >= 1.18e-38"),  # NaN weights at step 2, "lower optim.lr" said
    ("optim.eps=-1", "optim.eps must be >= 1.18e-38"),  # AdamW's traceback, and a run folder left behind
    ("optim.eps=1e-300", "optim.eps must be >= 1.18e-38"),  # 0 in float32: NaN weights as with 0
    ("optim.weight_decay=-0.1", "optim.weight_decay must be >= 0, got -0.1"),  # trained on, growing every weight
])
def test_adamw_settings_that_train_to_nan_or_grow_the_weights_are_refused(item, message):
    with pytest.raises(InputError, match=re.escape(message)):
        load_config(None, [item])
    assert load_config(None, ["optim.eps=1e-12", "optim.weight_decay=0"]).optim.eps == 1e-12


@pytest.mark.parametrize("items, message", [
    (["loss.temperature=1e-40"], "loss.temperature must be >= 1e-30"),
    (["loss.learn_temperature=true", "loss.temperature=0.005"],
     "loss.temperature must be >= 0.01 with loss.learn_temperature"),
])
def test_temperatures_the_loss_would_refuse_are_refused_in_the_config(items, message):
    """Both passed ``loss.temperature > 0`` and then ended ``phylocl train`` in the loss constructor's traceback."""
    with pytest.raises(InputError, match=re.escape(message)):
        load_config(None, items)
    assert load_config(None, ["loss.learn_temperature=true", "loss.temperature=0.01"]).loss.temperature == 0.01


def test_a_holdout_given_one_family_as_a_string_is_refused_naming_the_key():
    """``--set 'data.holdout={val: fam01}'`` (a string, not a list) was read letter by letter: 'data.holdout val:
    family 'f' is not in the dataset'."""
    with pytest.raises(InputError, match=re.escape("data.holdout.val: expected a list, got 'fam01'")):
        load_config(None, ["data.holdout={val: fam01}"])
    assert load_config(None, ["data.holdout={val: [fam01], test: [7]}"]).data.holdout == {"val": ["fam01"],
                                                                                          "test": ["7"]}
    assert load_config(None, ["model.overrides={dim: 8, extra: [1]}"]).model.overrides == {"dim": 8, "extra": [1]}
