"""Guards that stop training which can only produce a broken model (issue 14)."""

from __future__ import annotations

import math

import pytest

from phylocl.data.dataconfig import DataConfig
from phylocl.errors import InputError
from phylocl.training.guards import TrainingStopped, check_batch, check_finite


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_non_finite_values_stop_naming_the_step(value):
    with pytest.raises(TrainingStopped, match=rf"training stopped at step 7: the loss is {value}") as err:
        check_finite("loss", value, step=7)
    assert isinstance(err.value, InputError) and err.value.step == 7 and "no encoder was exported" in str(err.value)


def test_finite_values_pass():
    for v in (0.0, -3.5, 1e30):
        check_finite("gradient norm", v, step=1)


@pytest.mark.parametrize("rows, world, stops", [(1, 1, True), (0, 4, True), (2, 1, False), (1, 2, False)])
def test_batch_of_one_family_stops(rows, world, stops):
    if stops:
        with pytest.raises(TrainingStopped, match="has no negatives"):
            check_batch(rows, world, step=3)
    else:
        check_batch(rows, world, step=3)


def test_config_refuses_one_family_batches():
    with pytest.raises(ValueError, match="data.batch_size must be >= 2"):
        DataConfig(batch_size=1)
    with pytest.raises(ValueError, match="token_budget .* 2 x data.max_len"):
        DataConfig(max_len=48, token_budget=60)
    DataConfig(max_len=48, token_budget=96)
