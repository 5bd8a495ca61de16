import json
from pathlib import Path

import numpy as np
import yaml

from losskernel import cli, pipeline
from losskernel.config import load_config
from losskernel.job import Job
from losskernel.method import kernel, traces
from losskernel.method.chains import ChainTrace
from losskernel.method.sgld import SGLDConfig
from losskernel.params import job_params
from losskernel.plan import Plan
from losskernel.provenance import collect_provenance, config_sha256, file_sha256

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = ROOT / "workflow/schemas/config.schema.yaml"
CONFIG = ["--config", str(ROOT / "config/config.yaml"), "--schema", str(SCHEMA)]


def write_traces(path: Path, rng) -> None:
    config = SGLDConfig(step_size=1e-3, nbeta=1.0, localization=10.0, num_chains=2, num_draws=20)
    chains = {c: ChainTrace(loss=rng.random((20, 4)), batch_loss=rng.random(20),
                            distance=rng.random(20)) for c in range(2)}
    dataset = traces.make_trace_dataset(chains, rng.random(4), np.array(list("abcd")), config,
                                        obs_coords={"task": np.array(["add"] * 2 + ["div"] * 2)})
    traces.save_traces(dataset, path)


def test_the_kernel_step_writes_a_kernel_with_provenance(tmp_path, rng, monkeypatch):
    """compute_kernel's job as its rule's script runs it: the files the rule names, the params
    the plan gives, the record naming the rule, the job's settings and the run's config."""
    monkeypatch.chdir(tmp_path)
    traces_path = Path("results/digits/seed0/traces.nc")
    write_traces(traces_path, rng)
    plan = Plan.from_config(load_config([ROOT / "config/config.yaml"]), SCHEMA, check_files=False)
    wildcards = {"experiment": "digits", "run": "seed0"}
    job = Job("compute_kernel", "compute_kernel", wildcards, {"traces": str(traces_path)},
              {"covariance": "results/digits/seed0/kernel-covariance.nc",
               "correlation": "results/digits/seed0/kernel-correlation.nc"},
              job_params(plan, "compute_kernel", wildcards))
    pipeline.run_step(job, pipeline.job_record(job, ROOT, run_config=plan.config))
    result = kernel.load_kernel(tmp_path / "results/digits/seed0/kernel-covariance.nc")
    losses = traces.load_traces(traces_path)["loss"].values
    np.testing.assert_allclose(result["kernel"].values, kernel.covariance_kernel(losses),
                               rtol=1e-6)
    assert result.attrs["rule"] == "compute_kernel"
    assert json.loads(result.attrs["config"]) == {"centring": "pooled"}
    inputs = json.loads(result.attrs["input_sha256"])
    assert inputs == {"results/digits/seed0/traces.nc": file_sha256(traces_path)}
    # the run's whole config, as every job records it (rule run_config saves it by this hash)
    assert result.attrs["config_sha256"] == config_sha256(plan.config)


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
    run = {"experiments": {"x": {"b": 1, "a": [1, 2]}}, "seeds": [0, 1]}
    record = collect_provenance({"b": 1, "a": [1, 2]}, run_config=run, rule="r",
                                wildcards={"seed": "3"}, seed=3, inputs=[source], workdir=ROOT)
    assert all(isinstance(value, str | int) for value in record.values())
    # the settings (the job's slice of the config) and their hash; key order ignored
    assert record["config"] == '{"a":[1,2],"b":1}'
    assert record["settings_sha256"] == config_sha256({"a": [1, 2], "b": 1})
    # the whole run's config: the same hash for every job of the run, whatever its settings
    assert record["config_sha256"] == config_sha256(run) == collect_provenance(
        {"other": "settings"}, run_config=run)["config_sha256"]
    assert collect_provenance({"b": 1})["config_sha256"] == ""  # no run config given
    assert record["seed"] == 3 and record["rule"] == "r"
    assert json.loads(record["input_sha256"]) == {str(source): file_sha256(source)}
    assert set(json.loads(record["packages"])) >= {"torch", "numpy", "losskernel"}
    for key in ("git_commit", "git_dirty", "host", "slurm_job_id", "created_at", "wildcards"):
        assert key in record


def test_plan_command_sizes_the_jobs_of_any_experiment(capsys):
    code = cli.main(["plan", "--experiment", "digits", *CONFIG, "--threads", "1",
                     "--repeats", "1"])
    assert code == 0
    report = capsys.readouterr().out
    assert "N kernel inputs: 1,347 (counted from the data)" in report
    jobs = [line for line in report.splitlines() if "runtime=" in line]
    runs = [line.split("run=")[1].split()[0] for line in jobs]
    # the runs the workflow makes, from the same plan: 2 seeds, 5 γ (the sweep changes sampling
    # settings, so γ = 100 gets its own run), the replica of γ = 100, 5 checkpoints
    assert runs == ["train", "seed0", "seed1", "gamma10", "gamma30", "gamma100",
                    "gamma300", "gamma1000", "gamma100-seed5",
                    *(f"checkpoint{index}" for index in range(5))]
    # the other two trained models are named, and sized on their own
    assert ("These are model 0's jobs. The experiment trains 3 models (config key models); "
            "each of digits/model1, digits/model2 trains and samples its main runs too: "
            "losskernel plan --experiment digits/model1 sizes them.") in report
    assert cli.main(["plan", "--experiment", "digits/model1", *CONFIG, "--threads", "1",
                     "--repeats", "1"]) == 0
    replicate = capsys.readouterr().out
    assert [line.split("run=")[1].split()[0] for line in replicate.splitlines()
            if "runtime=" in line] == ["train", "seed0", "seed1"]
