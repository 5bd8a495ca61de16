import numpy as np
import pytest
import xarray as xr

from losskernel.method import traces
from losskernel.method.chains import ChainTrace
from losskernel.method.sgld import SGLDConfig


def make_dataset(rng) -> xr.Dataset:
    config = SGLDConfig(step_size=1e-3, nbeta=1.0, localization=10.0, num_chains=2, num_draws=5)
    chains = {c: ChainTrace(loss=rng.random((5, 3)), batch_loss=rng.random(5),
                            distance=rng.random(5)) for c in range(2)}
    return traces.make_trace_dataset(
        chains, rng.random(3), np.array(["x_0", "x_1", "x_2"]), config,
        obs_coords={"task": np.array(["add", "div", "add"]), "label": np.array([1, 2, 3])},
        attrs={"git_commit": "abc", "git_dirty": 0, "seed": 0},
    )


def test_netcdf_round_trip_is_identical(tmp_path, rng):
    dataset = make_dataset(rng)
    traces.save_traces(dataset, tmp_path / "traces.nc")
    loaded = traces.load_traces(tmp_path / "traces.nc")
    xr.testing.assert_identical(loaded, dataset)
    assert loaded.attrs["sgld_localization"] == 10.0
    assert loaded["loss"].dims == ("chain", "draw", "obs_id")
    assert list(loaded["task"].values) == ["add", "div", "add"]


def test_schema_violations_are_named(rng):
    dataset = make_dataset(rng)
    with pytest.raises(ValueError, match="lacks variable 'init_loss'"):
        traces.validate_traces(dataset.drop_vars("init_loss"))
    broken = dataset.copy(deep=True)
    broken["loss"][0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        traces.validate_traces(broken)
    with pytest.raises(ValueError, match="attribute 'config' must be"):
        traces.validate_traces(dataset.assign_attrs(config={"a": 1}))
    with pytest.raises(ValueError, match="dims"):
        traces.validate_traces(dataset.transpose("draw", "chain", "obs_id"))
