"""The pipeline's steps on tiny real files, run with the arguments the plan gives their jobs.

The tiny experiment is the default ``modarith`` made small (p = 11, an MLP, 8 training steps,
5 kernel inputs per task, 2 chains of 4 draws). The tests run in a fresh directory and build
each job as Snakemake would: its files the relative paths its rule in ``workflow/rules/*.smk``
writes (``results/modarith/...``), its arguments :func:`losskernel.params.job_params`.
"""

from __future__ import annotations

import inspect
import re
import signal
from pathlib import Path

import numpy as np
import pytest
import torch
from tests.rule_files import written_rules

from losskernel import pipeline
from losskernel.config import load_config, update_config
from losskernel.job import Files, Job
from losskernel.method import resume
from losskernel.method.chains import evaluate_per_sample_losses
from losskernel.method.kernel import compute_kernel, load_kernel
from losskernel.method.losses import cross_entropy_per_sample
from losskernel.method.parallel import sample_chains
from losskernel.method.resume import SamplingInterrupted
from losskernel.method.sgld import SGLDConfig
from losskernel.method.traces import TRACE_VARIABLES, load_traces
from losskernel.params import PARAMS, job_params
from losskernel.pipeline.io import checkpoint_steps, load_model, read_tsv
from losskernel.plan import Plan
from losskernel.tasks import load_task
from losskernel.tasks.protocol import DataFile, FigureSet, Reading

ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = ROOT / "workflow/scripts"
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
    job = train_job(plan)
    pipeline.models.train_model(job.inputs, job.outputs, **job.arguments, record=RECORD,
                                progress=False)
    return job


def rule_job(plan: Plan, rule: str, wildcards: dict[str, str], inputs: Files,
             outputs: dict[str, str], **params: object) -> Job:
    """The job of ``rule`` at ``wildcards`` as its script gets it: the files its rule names,
    the arguments of :func:`job_params`, and the rule's other ``params`` (the fixed rules'
    scripts run the step of the rule's name)."""
    return Job(rule=rule, step=rule, wildcards=wildcards, inputs=inputs, outputs=outputs,
               arguments={**job_params(plan, rule, wildcards), **params})


def train_job(plan: Plan) -> Job:
    """Rule train_model (models.smk); modarith has no data files to read."""
    return rule_job(plan, "train_model", {"experiment": "modarith"}, inputs={},
                    outputs={"model": "results/modarith/model.pt",
                             "checkpoints": "results/modarith/checkpoints.pt",
                             "history": "results/modarith/training.tsv"})


def chain_job(plan: Plan, chain: int | str, run: str = "seed3") -> Job:
    """Rule sample_chain (sampling.smk): the model, or for a checkpoint run the checkpoints
    (common.smk, ``sampled_model``); its state directory that of its chain file."""
    checkpoint = plan.experiment("modarith").run(run).checkpoint
    model = "results/modarith/model.pt" if checkpoint is None else (
        "results/modarith/checkpoints.pt")
    traces = f"results/modarith/{run}/chains/chain{chain}.nc"
    return rule_job(plan, "sample_chain", {"experiment": "modarith", "run": run,
                                           "chain": str(chain)},
                    inputs={"model": model}, outputs={"traces": traces},
                    state_dir=str(Path(traces).parent))


def merge_job(plan: Plan, run: str = "seed3") -> Job:
    """Rule merge_chains (sampling.smk): the chain file of each of the run's sampling jobs."""
    chains = [f"results/modarith/{run}/chains/chain{block}.nc"
              for block in plan.run_blocks("modarith", run)]
    return rule_job(plan, "merge_chains", {"experiment": "modarith", "run": run},
                    inputs={"chains": chains},
                    outputs={"traces": f"results/modarith/{run}/traces.nc"})


def kernel_job(plan: Plan, run: str = "seed3") -> Job:
    """Rule compute_kernel (kernels.smk)."""
    return rule_job(plan, "compute_kernel", {"experiment": "modarith", "run": run},
                    inputs={"traces": f"results/modarith/{run}/traces.nc"},
                    outputs={"covariance": f"results/modarith/{run}/kernel-covariance.nc",
                             "correlation": f"results/modarith/{run}/kernel-correlation.nc"})


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
    # the step writes its rule's outputs and nothing else beside them
    assert sorted(path.name for path in Path("results/modarith").iterdir()) == [
        "checkpoints.pt", "model.pt", "training.tsv"]
    saved = torch.load(outputs["model"], weights_only=False)
    settings = plan.experiment("modarith").settings
    assert (saved["task"], saved["data"], saved["model"]) == (TASK, settings["data"],
                                                              settings["model"])
    # the record says the 8 steps did not meet the target (the check rule would stop there)
    # (and its size: this network has no buffers, so every tensor it saves is a parameter)
    size = sum(tensor.numel() for tensor in saved["state_dict"].values())
    assert saved["provenance"] == {**RECORD, "training": (
        f'{{"converged":false,"final_step":8,"max_steps":8,"num_parameters":{size}}}')}
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
    assert job.arguments["seed"] == 3 and job.arguments["checkpoint"] is None
    assert job.arguments["chains"] == [1]  # chains_per_job: 1
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
    job = chain_job(plan, 0, run="checkpoint0")  # reads checkpoints.pt
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
    assert list(plan.run_blocks("modarith", "seed3")) == ["0", "1"]  # a job per chain
    merge = merge_job(plan)
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
    block = chain_job(one_job, "0-1")
    assert block.arguments["chains"] == [0, 1]
    pipeline.run_step(block, RECORD, threads=2)
    for chain in (0, 1):
        pipeline.run_step(chain_job(plan, chain), RECORD, threads=1)
    merged = []
    for layout in (plan, one_job):  # each merge writes the run's traces.nc: keep the values
        job = merge_job(layout)
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
    pipeline.run_step(merge_job(plan), RECORD)
    job = kernel_job(plan)
    assert job.arguments == {"centring": "pooled"}
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


DECLARED_SCRIPTS = {DataFile: "make_data_file", Reading: "score_reading",
                    FigureSet: "plot_figures"}
"""The script of each kind of a task's declared rule (workflow/rules/tasks.smk)."""


def script_step(script: str) -> str | None:
    """The step a rule's script runs, ``run_script(snakemake, <step>, CODE)``; None for a
    script that runs no step (a target's)."""
    found = re.search(r"run_script\(snakemake, (\w+), CODE\)",
                      (SCRIPTS / f"{script}.py").read_text())
    return found.group(1) if found else None


def rule_jobs(full: Plan) -> dict[str, tuple[str, dict[str, str], list[str]]]:
    """One job of every rule with params: its script, wildcards and the names of the rule's
    params but ``arguments`` and ``code`` (the fingerprint, kept for the record). A fixed
    rule's job is digits' (it has every analysis; the pretrained model's rule: ImageNet's), a
    declared rule's one of an experiment it serves."""
    digits = full.experiment("digits")
    wildcards = {"experiment": "digits", "run": "seed0", "seed": "0",
                 "chain": next(iter(full.run_blocks("digits", "seed0"))),
                 "point": digits.calibration_points[0], "sweep": "capacity",
                 "source": "fashion-mnist"}
    written = written_rules()
    jobs = {}
    for rule in PARAMS:
        script = re.search(r'script:\s+"\.\./scripts/(\w+)\.py"', written[rule])
        assert script, f"rule {rule} runs no script of workflow/scripts"
        params = re.search(r"^ {4}params:\n((?: {8}.*\n)+)", written[rule], re.MULTILINE)
        others = [name for name in re.findall(r"^ {8}(\w+)=", params.group(1), re.MULTILINE)
                  if name not in ("arguments", "code")]
        at = {**wildcards, "experiment": "imagenet"} if rule == "import_model" else wildcards
        jobs[rule] = (script.group(1), at, others)
    for rule, (_, declaration) in full.declarations().items():
        at = {} if isinstance(declaration, DataFile) else {
            "experiment": full.offering(declaration)[0], "seed": "0"}
        jobs[rule] = (DECLARED_SCRIPTS[type(declaration)], at, [])
    return jobs


@pytest.fixture(scope="module")
def full() -> Plan:
    """The default config, the ImageNet config and the capacity sweep (files not checked):
    every rule has jobs."""
    config = load_config([ROOT / "config/config.yaml", ROOT / "config/imagenet.yaml",
                          ROOT / "config/sweeps/capacity.yaml"])
    return Plan.from_config(config, SCHEMA, check_files=False)


def test_every_rule_takes_its_own_params_and_its_script_runs_a_step(full):
    """Every written rule's params are its own entry of losskernel.params.PARAMS, and PARAMS
    has no rule the workflow lacks; each rule's script runs a step (a fixed rule's, the step of
    its name); every step is some rule's, and every script of workflow/scripts some rule's."""
    written = written_rules()
    params_of = {rule: re.findall(r'arguments=params_of\("(\w+)"\)', body)
                 for rule, body in written.items()}
    assert {rule: named for rule, named in params_of.items() if named} == {
        rule: [rule] for rule in PARAMS}
    # each rule's code fingerprint starts from its own script
    code_of = {rule: re.findall(r'code=code_of\("(\w+)"', body) for rule, body in written.items()}
    assert {rule: named for rule, named in code_of.items() if named} == {
        **{rule: [rule] for rule in PARAMS}, "run_config": ["run_config"]}
    tasks_smk = (ROOT / "workflow/rules/tasks.smk").read_text()
    assert all(f'"../scripts/{script}.py"' in tasks_smk for script in DECLARED_SCRIPTS.values())
    assert all(f'code=code_of("{script}", DECLARATION.' in tasks_smk
               for script in DECLARED_SCRIPTS.values())
    jobs = rule_jobs(full)
    steps = {rule: script_step(script) for rule, (script, _, _) in jobs.items()}
    assert {rule: steps[rule] for rule in PARAMS} == {rule: rule for rule in PARAMS}
    assert set(steps.values()) == set(pipeline.STEPS)
    # the targets' scripts (they print or save, and run no step) are the only others
    targets = {re.search(r'"workflow/scripts/(\w+)\.py"', written[rule]).group(1)
               for rule in ("run_config", "calibrate")}
    assert {script_step(script) for script in targets} == {None}
    assert {path.stem for path in SCRIPTS.glob("*.py")} == {
        script for script, _, _ in jobs.values()} | targets


def test_every_rule_gives_its_step_arguments_its_signature_accepts(full):
    """For one job of every rule, the step's signature binds the job's files, its arguments
    (job_params), the rule's other params (sample_chain's state_dir) and the record."""
    jobs = rule_jobs(full)
    assert jobs["sample_chain"][2] == ["state_dir"]
    for rule, (script, wildcards, others) in jobs.items():
        step = pipeline.STEPS[script_step(script)]
        arguments = {**job_params(full, rule, wildcards),
                     **{name: f"<{name}>" for name in others}}
        threads = {"threads": 1} if "threads" in inspect.signature(step).parameters else {}
        try:
            inspect.signature(step).bind({}, {}, **arguments, record={}, **threads)
        except TypeError as error:
            pytest.fail(f"rule {rule}: {step.__name__}{inspect.signature(step)} does not take "
                        f"{sorted(arguments)}: {error}")
