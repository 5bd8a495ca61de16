"""The pipeline's steps on tiny real files, run with the arguments the plan gives their jobs.

The tiny experiment is the default ``modarith`` made small (p = 11, an MLP, 8 training steps,
5 kernel inputs per task, 2 chains of 4 draws). The tests run in a fresh directory, where the
jobs' relative paths (``results/modarith/...``) are what the workflow would write.
"""

from __future__ import annotations

import inspect
import signal
from pathlib import Path

import numpy as np
import pytest
import torch

from losskernel import dag, pipeline
from losskernel.config import load_config, update_config
from losskernel.job import Job
from losskernel.method import resume
from losskernel.method.chains import evaluate_per_sample_losses
from losskernel.method.kernel import compute_kernel, load_kernel
from losskernel.method.losses import cross_entropy_per_sample
from losskernel.method.parallel import sample_chains
from losskernel.method.resume import SamplingInterrupted
from losskernel.method.sgld import SGLDConfig
from losskernel.method.traces import TRACE_VARIABLES, load_traces
from losskernel.pipeline.io import checkpoint_steps, load_model, read_tsv
from losskernel.plan import Plan
from losskernel.tasks import load_task

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = ROOT / "workflow/schemas/config.schema.yaml"
TINY = {
    "data": {"modulus": 11},
    "model": {"architecture": "mlp", "d_model": 4, "num_heads": 1, "d_mlp": 8},
    "training": {"learning_rate": 1e-2, "weight_decay": 0.0, "max_steps": 8, "eval_every": 4,
                 "patience_steps": 0, "num_checkpoints": 4},
    "kernel_inputs": {"per_task": 5},
    "sampling": {"seeds": [3], "step_size": 1e-3, "nbeta": 10, "localization": 100,
                 "num_chains": 2, "num_burnin_steps": 2, "num_draws": 4,
                 "num_steps_between_draws": 1, "batch_size": 16, "eval_batch_size": 8},
    "analysis": {"knn_k": 3, "standard_error_batches": 2, "figure_seed": 3,
                 "trajectory": {"num_checkpoints": 2, "seed": 3, "sampling": {"num_draws": 5}},
                 "diagnostics": {"batches": 2}},
}
SGLD = SGLDConfig(step_size=1e-3, nbeta=10, localization=100, num_chains=2, num_burnin_steps=2,
                  num_draws=4, num_steps_between_draws=1, batch_size=16, eval_batch_size=8,
                  seed=3)
"""The SGLD settings of the tiny experiment's run seed3, written out."""
RECORD = {"rule": "test", "created_at": "2024-01-01T00:00:00"}
TASK = "modular_arithmetic"


@pytest.fixture(scope="module")
def plan() -> Plan:
    config = load_config([ROOT / "config/config.yaml"])
    config["experiments"] = {"modarith": config["experiments"]["modarith"]}
    update_config(config, {"experiments": {"modarith": TINY}})
    return Plan.from_config({**config, "chains_per_job": 1}, SCHEMA)  # a job per chain


@pytest.fixture(autouse=True)
def sigterm_handler():
    """The sampling step installs a SIGTERM handler (to save and stop); the test run's own is
    put back after each test."""
    handler = signal.getsignal(signal.SIGTERM)
    yield
    signal.signal(signal.SIGTERM, handler)


@pytest.fixture
def trained(plan, tmp_path, monkeypatch):
    """The tiny model trained by its job in a fresh directory (the working directory)."""
    monkeypatch.chdir(tmp_path)
    job = dag.job(plan, "train_model", {"experiment": "modarith"})
    pipeline.models.train_model(job.inputs, job.outputs, **job.arguments, record=RECORD,
                                progress=False)
    return job


def chain_job(plan, chain: int, run: str = "seed3") -> Job:
    return dag.job(plan, "sample_chain", {"experiment": "modarith", "run": run,
                                          "chain": str(chain)})


def sample(job: Job, **changes) -> None:
    pipeline.sampling.sample_chain(job.inputs, job.outputs, **{**job.arguments, **changes},
                                   record=RECORD, progress=False)


def reference_chains(plan) -> tuple[dict, np.ndarray]:
    """Both chains of run seed3 in one ``sample_chains`` call, and the losses at w*."""
    task, settings = load_task(TASK), plan.experiment("modarith").settings
    data = task.make_data(settings["data"])
    model = load_model(task, TASK, settings["data"], "results/modarith/model.pt", data)
    train_data, strata = task.training_split(data)
    inputs = data.tensors(task.select_kernel_inputs(data, settings["kernel_inputs"]))
    chains = sample_chains(model, cross_entropy_per_sample, train_data, inputs, SGLD,
                           strata=strata, progress=False)
    init_loss = evaluate_per_sample_losses(model, cross_entropy_per_sample, inputs, 8).numpy()
    return chains, init_loss


def test_train_model_writes_the_model_its_checkpoints_and_history(plan, trained):
    outputs = trained.outputs
    assert outputs == {"model": "results/modarith/model.pt",
                       "checkpoints": "results/modarith/checkpoints.pt",
                       "history": "results/modarith/training.tsv"}
    saved = torch.load(outputs["model"], weights_only=False)
    settings = plan.experiment("modarith").settings
    assert (saved["task"], saved["data"], saved["model"]) == (TASK, settings["data"],
                                                              settings["model"])
    # the record says the 8 steps did not meet the target (the check rule would stop there)
    assert saved["provenance"] == {
        **RECORD, "training": '{"converged":false,"final_step":8,"max_steps":8}'}
    assert saved["step"] == 8
    assert checkpoint_steps(outputs["checkpoints"]) == [0, 2, 8]  # log-spaced from 0 to 8
    final = torch.load(outputs["checkpoints"], weights_only=False)["checkpoints"][8]
    assert all(torch.equal(final[name], value) for name, value in saved["state_dict"].items())
    history = read_tsv(outputs["history"])
    assert list(history["step"]) == [0, 4, 8]
    assert {"train_loss", "train_accuracy", "test_accuracy_add"} <= set(history.columns)
    task = load_task(TASK)
    data = task.make_data(settings["data"])
    model = load_model(task, TASK, settings["data"], outputs["model"], data)
    assert not model.training
    with pytest.raises(ValueError, match=r"holds a 'modular_arithmetic' model, expected 'digits'"):
        load_model(load_task("digits"), "digits", settings["data"], outputs["model"], data)


def test_sample_chain_writes_one_chain_of_the_kernel_inputs(plan, trained):
    job = chain_job(plan, 1)
    assert job.outputs == {"traces": "results/modarith/seed3/chains/chain1.nc"}
    assert job.arguments["seed"] == 3 and job.arguments["checkpoint"] is None
    sample(job)
    dataset = load_traces(job.outputs["traces"])
    assert dict(dataset["loss"].sizes) == {"chain": 1, "draw": 4, "obs_id": 10}
    assert dataset["chain"].values.tolist() == [1]
    assert sorted(dataset["task"].values.tolist()) == ["add"] * 5 + ["div"] * 5
    assert dataset.attrs["sgld_seed"] == 3 and dataset.attrs["sgld_num_draws"] == 4
    assert {key: dataset.attrs[key] for key in RECORD} == RECORD
    assert "checkpoint_step" not in dataset.attrs
    chains, init_loss = reference_chains(plan)
    np.testing.assert_array_equal(dataset["loss"].values[0], chains[1].loss.astype(np.float32))
    np.testing.assert_array_equal(dataset["init_loss"].values, init_loss.astype(np.float32))
    assert list(Path(job.arguments["state_dir"]).glob("*.state.pt")) == []


def test_a_checkpoint_run_samples_around_the_chosen_training_checkpoint(plan, trained):
    # 2 of the saved [0, 2, 8]: the first and the last; checkpoint0 is the initialization
    job = chain_job(plan, 0, run="checkpoint0")
    assert job.inputs["model"] == "results/modarith/checkpoints.pt"
    assert job.arguments["checkpoint"] == {"index": 0, "num_checkpoints": 2}
    assert job.arguments["sampling"]["num_draws"] == 5  # the trajectory's override
    sample(job)
    dataset = load_traces(job.outputs["traces"])
    assert dataset.attrs["checkpoint_step"] == 0 and dataset.sizes["draw"] == 5
    task, settings = load_task(TASK), plan.experiment("modarith").settings
    data = task.make_data(settings["data"])
    untrained = task.build_model(settings["model"], data).train(False)
    inputs = data.tensors(task.select_kernel_inputs(data, settings["kernel_inputs"]))
    at_init = evaluate_per_sample_losses(untrained, cross_entropy_per_sample, inputs, 8).numpy()
    np.testing.assert_allclose(dataset["init_loss"].values, at_init, rtol=1e-6)


def test_sampling_refuses_a_model_trained_on_other_data_and_writes_nothing(plan, trained):
    job = chain_job(plan, 0)
    other = {**job.arguments["settings"],
             "data": {**job.arguments["settings"]["data"], "split_seed": 1}}
    with pytest.raises(ValueError, match="was trained on data"):
        sample(job, settings=other)
    assert not Path(job.outputs["traces"]).exists()
    assert not Path(job.arguments["state_dir"]).exists()


def test_two_chain_jobs_merged_equal_one_run_of_both_chains(plan, trained):
    for chain in (1, 0):  # in either order
        pipeline.run_step(chain_job(plan, chain), RECORD, threads=1)
    merge = dag.job(plan, "merge_chains", {"experiment": "modarith", "run": "seed3"})
    assert merge.inputs == {"chains": ["results/modarith/seed3/chains/chain0.nc",
                                       "results/modarith/seed3/chains/chain1.nc"]}
    pipeline.run_step(merge, {"rule": "merge_chains"})
    merged = load_traces(merge.outputs["traces"])
    assert merged["chain"].values.tolist() == [0, 1]
    chains, init_loss = reference_chains(plan)
    for name in ("loss", "batch_loss", "distance"):
        expected = np.stack([getattr(chains[chain], name) for chain in (0, 1)])
        np.testing.assert_array_equal(merged[name].values, expected.astype(np.float32),
                                      err_msg=name)
    np.testing.assert_array_equal(merged["init_loss"].values, init_loss.astype(np.float32))
    assert set(TRACE_VARIABLES) <= set(merged.data_vars)
    assert merged.attrs["rule"] == "merge_chains" and merged.attrs["sgld_seed"] == 3


def test_a_job_of_both_chains_side_by_side_equals_a_job_per_chain(plan, trained):
    """chains_per_job: all runs the run's chains in one job on 2 threads; its traces are those
    of the jobs of one chain each, bit for bit."""
    one_job = Plan.from_config({**plan.config, "chains_per_job": "all"}, SCHEMA)
    block = dag.job(one_job, "sample_chain", {"experiment": "modarith", "run": "seed3",
                                              "chain": "0-1"})
    assert block.arguments["chains"] == [0, 1]
    pipeline.run_step(block, RECORD, threads=2)
    for chain in (0, 1):
        pipeline.run_step(chain_job(plan, chain), RECORD, threads=1)
    merged = []
    for layout in (plan, one_job):  # each merge writes the run's traces.nc: keep the values
        job = dag.job(layout, "merge_chains", {"experiment": "modarith", "run": "seed3"})
        pipeline.run_step(job, {"rule": "merge_chains"})
        with load_traces(job.outputs["traces"]) as traces:
            merged.append({name: traces[name].values.copy() for name in
                           ("loss", "batch_loss", "distance", "init_loss")})
    per_chain, side_by_side = merged
    for name, values in per_chain.items():
        np.testing.assert_array_equal(values, side_by_side[name], err_msg=name)
    assert list(Path(block.arguments["state_dir"]).glob("*.state.pt")) == []


def test_compute_kernel_writes_both_kernels_of_the_traces(plan, trained):
    for chain in (0, 1):
        sample(chain_job(plan, chain))
    pipeline.run_step(dag.job(plan, "merge_chains", {"experiment": "modarith", "run": "seed3"}),
                      RECORD)
    job = dag.job(plan, "compute_kernel", {"experiment": "modarith", "run": "seed3"})
    assert job.arguments == {"centring": "pooled"}
    assert job.outputs == {"covariance": "results/modarith/seed3/kernel-covariance.nc",
                           "correlation": "results/modarith/seed3/kernel-correlation.nc"}
    pipeline.run_step(job, {"rule": "compute_kernel"}, threads=2)  # the step takes no threads
    losses = load_traces(job.inputs["traces"])["loss"].values
    for kind in ("covariance", "correlation"):
        kernel = load_kernel(job.outputs[kind])
        expected = compute_kernel(losses, kind=kind, centring="pooled")
        np.testing.assert_array_equal(kernel["kernel"].values, expected.astype(np.float32))
        assert kernel["kernel"].shape == (10, 10)
        assert (kernel.attrs["kind"], kernel.attrs["centring"]) == (kind, "pooled")
        assert kernel.attrs["rule"] == "compute_kernel" and kernel.attrs["sgld_seed"] == 3


def test_run_step_passes_threads_only_to_steps_that_take_them(monkeypatch):
    calls = []

    def with_threads(inputs, outputs, *, value, record, threads=1):
        calls.append(("with_threads", inputs, outputs, value, dict(record), threads))

    def without_threads(inputs, outputs, *, value, record):
        calls.append(("without_threads", inputs, outputs, value, dict(record)))

    monkeypatch.setitem(pipeline.STEPS, "with_threads", with_threads)
    monkeypatch.setitem(pipeline.STEPS, "without_threads", without_threads)
    for step in ("with_threads", "without_threads"):
        job = Job(rule=f"rule_{step}", step=step, wildcards={}, inputs={"a": "in.tsv"},
                      outputs={"b": "out.tsv"}, arguments={"value": 7})
        pipeline.run_step(job, {"rule": "r"}, threads=3)
    assert calls == [
        ("with_threads", {"a": "in.tsv"}, {"b": "out.tsv"}, 7, {"rule": "r"}, 3),
        ("without_threads", {"a": "in.tsv"}, {"b": "out.tsv"}, 7, {"rule": "r"}),
    ]
    takes = {name for name, step in pipeline.STEPS.items()
             if "threads" in inspect.signature(step).parameters}
    assert {"train_model", "sample_chain"} <= takes
    assert "compute_kernel" not in takes and "merge_chains" not in takes


def test_a_state_file_left_by_a_stopped_chain_is_resumed_and_deleted(plan, trained):
    job = chain_job(plan, 0)
    state = Path(job.arguments["state_dir"]) / "chain0.state.pt"
    stops = iter([False, False, True])  # stop (as on SIGTERM) after step 3 of 6
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(resume, "stop_on_sigterm", lambda: lambda: next(stops))
        with pytest.raises(SamplingInterrupted, match="chain 0 stopped after step 3 of 6"):
            sample(job)
    assert torch.load(state, weights_only=False)["steps_done"] == 3
    assert not Path(job.outputs["traces"]).exists()
    sample(job)
    assert not state.exists()
    chains, _ = reference_chains(plan)
    resumed = load_traces(job.outputs["traces"])
    np.testing.assert_array_equal(resumed["loss"].values[0], chains[0].loss.astype(np.float32))


def test_every_rule_gives_its_step_arguments_its_signature_accepts():
    """For one job of every rule of the default config and the ImageNet config (files not
    checked), the step's signature binds the job's files, arguments and record."""
    config = load_config([ROOT / "config/config.yaml", ROOT / "config/imagenet.yaml"])
    full = Plan.from_config(config, SCHEMA, check_files=False)
    jobs = {}
    for job in dag.jobs_for(full, [*dag.targets(full), *dag.calibration_targets(full)]):
        jobs.setdefault(job.rule, job)
    assert set(jobs) == set(dag.rules(full))
    assert set(dag.RULES) < set(jobs)
    assert {job.step for job in jobs.values()} == set(pipeline.STEPS)  # every step is used
    for rule, job in jobs.items():
        step = pipeline.STEPS[job.step]
        threads = {"threads": 1} if "threads" in inspect.signature(step).parameters else {}
        try:
            inspect.signature(step).bind(job.inputs, job.outputs, **job.arguments, record={},
                                         **threads)
        except TypeError as error:
            pytest.fail(f"rule {rule}: {job.step}{inspect.signature(step)} does not take "
                        f"{sorted(job.arguments)}: {error}")
