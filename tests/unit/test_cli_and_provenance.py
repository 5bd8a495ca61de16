import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from losskernel import cli, kernel, traces
from losskernel.provenance import collect_provenance, config_sha256, file_sha256
from losskernel.sgld import ChainTrace, SGLDConfig

ROOT = Path(__file__).resolve().parents[2]


def write_traces(path: Path, rng) -> None:
    config = SGLDConfig(step_size=1e-3, nbeta=1.0, localization=10.0, num_chains=2, num_draws=20)
    chains = {c: ChainTrace(loss=rng.random((20, 4)), batch_loss=rng.random(20),
                            distance=rng.random(20)) for c in range(2)}
    dataset = traces.make_trace_dataset(chains, rng.random(4), np.array(list("abcd")), config,
                                        obs_coords={"task": np.array(["add"] * 2 + ["div"] * 2)})
    traces.save_traces(dataset, path)


def test_kernel_command_writes_a_kernel_with_provenance(tmp_path, rng):
    write_traces(tmp_path / "traces.nc", rng)
    code = cli.main(["kernel", "--traces", str(tmp_path / "traces.nc"), "--kind", "covariance",
                     "--output", str(tmp_path / "K.nc")])
    assert code == 0
    result = kernel.load_kernel(tmp_path / "K.nc")
    losses = traces.load_traces(tmp_path / "traces.nc")["loss"].values
    np.testing.assert_allclose(result["kernel"].values, kernel.covariance_kernel(losses),
                               rtol=1e-6)
    assert result.attrs["rule"] == "cli:kernel"
    inputs = json.loads(result.attrs["input_sha256"])
    assert inputs == {str(tmp_path / "traces.nc"): file_sha256(tmp_path / "traces.nc")}


def test_validate_config_command_names_the_bad_key(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    override = {"experiments": {"modarith": {"sampling": {"localization": -5}}}}
    bad.write_text(yaml.safe_dump(override))
    code = cli.main(["validate-config", "--config", str(ROOT / "config/config.yaml"), str(bad),
                     "--schema", str(ROOT / "workflow/schemas/config.schema.yaml")])
    assert code == 2
    assert "experiments.modarith.sampling.localization: -5" in capsys.readouterr().err


def test_provenance_record_is_netcdf_legal_and_complete(tmp_path):
    source = tmp_path / "input.txt"
    source.write_text("data")
    record = collect_provenance({"b": 1, "a": [1, 2]}, rule="r", wildcards={"seed": "3"}, seed=3,
                                inputs=[source], workdir=ROOT)
    assert all(isinstance(value, str | int) for value in record.values())
    assert record["config_sha256"] == config_sha256({"a": [1, 2], "b": 1})  # key order ignored
    assert record["seed"] == 3 and record["rule"] == "r"
    assert json.loads(record["input_sha256"]) == {str(source): file_sha256(source)}
    assert set(json.loads(record["packages"])) >= {"torch", "numpy", "losskernel"}
    for key in ("git_commit", "git_dirty", "host", "slurm_job_id", "created_at", "wildcards"):
        assert key in record


@pytest.mark.parametrize("step", ["train", "sample", "kernel", "separation", "embed", "summarize",
                                  "figures", "headline", "macros", "validate-config"])
def test_every_step_has_a_command(step, capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main([step, "--help"])
    assert exit_info.value.code == 0
    assert "usage: losskernel" in capsys.readouterr().out
