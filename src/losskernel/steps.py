"""The pipeline's steps, each reading and writing files.

The Snakemake scripts and the ``losskernel`` command line both call these functions, so a step
behaves the same inside and outside the workflow. Settings arrive as plain dicts (config
sections); every output carries the provenance ``record`` it is given.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from losskernel import kernel as kernels
from losskernel import metrics, traces
from losskernel.provenance import write_tsv

if TYPE_CHECKING:  # torch and plotting are imported by the steps that need them (start-up time)
    import torch

    from losskernel.sgld import SGLDConfig

PathLike = str | os.PathLike
Record = Mapping[str, str | int]

KNN_READINGS: dict[str, tuple[str, str]] = {
    # metric: (edges removed from the neighbour graph, label in figures)
    "roc_auc": ("same_output", "same-output edges removed"),
    "roc_auc_shared_token": ("shared_token", "shared-token edges removed"),
    "roc_auc_all_edges": ("none", "all edges"),
}
"""The kNN task-vote readings; ``roc_auc`` (same-output edges removed) is the headline."""


def set_threads(threads: int) -> None:
    """Match torch's intra-op threads to the job's cores (oversubscription costs up to 4x)."""
    import torch

    torch.set_num_threads(max(1, int(threads)))


def train(
    task: str, data_settings: Mapping, model_settings: Mapping, training_settings: Mapping, *,
    model_path: PathLike, checkpoints_path: PathLike, history_path: PathLike, record: Record,
    threads: int = 1, progress: bool = True,
) -> None:
    """Train the task's model; write the final weights, the checkpoints and the history.

    Training runs on ``training_settings["device"]`` (default CPU); a task whose training set
    is too large to evaluate whole (ImageNet) reports its loss on the task's ``monitor_set``.
    """
    from losskernel.experiments import get_task
    from losskernel.losses import cross_entropy_per_sample
    from losskernel.training import train_adamw, training_config_from_settings

    set_threads(threads)
    module = get_task(task)
    data = module.make_data(data_settings)
    train_data, _ = module.training_split(data)
    monitor = module.monitor_set(data) if hasattr(module, "monitor_set") else None
    result = train_adamw(
        module.build_model(model_settings, data), cross_entropy_per_sample, train_data,
        training_config_from_settings(training_settings),
        evaluate=lambda model: module.accuracy_by_task(model, data),
        is_converged=lambda m: module.is_converged(m, training_settings), progress=progress,
        monitor=monitor, device=training_settings.get("device", "cpu"),
    )
    _save_model(task, data_settings, model_settings, record, result.final_step,
                result.checkpoints[result.final_step], result.checkpoints,
                model_path=model_path, checkpoints_path=checkpoints_path)
    write_tsv(result.history, history_path, record)


def _save_model(task: str, data_settings: Mapping, model_settings: Mapping, record: Record,
                step: int | None, state: Mapping, checkpoints: Mapping[int, Mapping], *,
                model_path: PathLike, checkpoints_path: PathLike) -> None:
    """``model.pt`` (final weights) and ``checkpoints.pt`` (step -> weights), each with the
    settings that rebuild the model and the provenance record."""
    import torch

    header = {"task": task, "data": dict(data_settings), "model": dict(model_settings),
              "provenance": dict(record)}
    for path in (model_path, checkpoints_path):
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    torch.save({**header, "step": step, "state_dict": dict(state)}, model_path)
    torch.save({**header, "checkpoints": dict(checkpoints)}, checkpoints_path)


def import_pretrained(task: str, data_settings: Mapping, model_settings: Mapping, *,
                      model_path: PathLike, checkpoints_path: PathLike, record: Record) -> None:
    """Pretrained weights (``model.weights``) and the user's own training checkpoints
    (``model.checkpoints``: ``[{step, path}, ...]``) as ``model.pt`` and ``checkpoints.pt``.

    Each file is loaded into the task's model strictly, so a wrong architecture fails here,
    not in the middle of sampling.
    """
    from losskernel.experiments import get_task

    module = get_task(task)
    model = module.build_model(model_settings)

    def weights_of(path: PathLike) -> dict:
        try:
            model.network.load_state_dict(module.load_network_weights(Path(path)))
        except RuntimeError as error:
            raise ValueError(f"{path} does not fit {model_settings['architecture']}: "
                             f"{str(error)[:500]}") from None
        return {name: tensor.clone() for name, tensor in model.state_dict().items()}

    checkpoints = {int(entry["step"]): weights_of(entry["path"])
                   for entry in model_settings["checkpoints"]}
    final = weights_of(module.weights_path(model_settings))
    _save_model(task, data_settings, model_settings, record, None, final, checkpoints,
                model_path=model_path, checkpoints_path=checkpoints_path)


def wordnet_hierarchy(nltk_data: PathLike, debian_dir: PathLike, *, output_path: PathLike,
                      record: Record) -> None:
    """The place of every ImageNet-1k class in WordNet (``losskernel.wordnet.hierarchy_table``),
    from nltk's corpus or Debian's files; the record names which, and WordNet's version."""
    from losskernel.wordnet import hierarchy_table, imagenet1k_classes, load_wordnet

    reader, source = load_wordnet(Path(nltk_data), Path(debian_dir))
    table = hierarchy_table(reader, imagenet1k_classes())
    write_tsv(table, output_path, {**record, "wordnet_source": source,
                                   "wordnet_version": reader.get_version()})


def load_model(task: str, data_settings: Mapping, model_path: PathLike,
               checkpoint_step: int | None = None, data: object | None = None) -> torch.nn.Module:
    """Rebuild a trained model from the settings stored beside its weights.

    ``model_path`` is a ``model.pt`` (final weights) or, with ``checkpoint_step``, a
    ``checkpoints.pt`` from which that training step's weights are taken.
    """
    import torch

    from losskernel.experiments import get_task

    saved = torch.load(model_path, weights_only=False)
    if saved["task"] != task:
        raise ValueError(f"{model_path} holds a {saved['task']!r} model, expected {task!r}")
    if saved["data"] != dict(data_settings):
        raise ValueError(f"{model_path} was trained on data {saved['data']}, not on the "
                         f"configured {dict(data_settings)}; retrain it or fix the config")
    module = get_task(task)
    model = module.build_model(saved["model"],
                               module.make_data(data_settings) if data is None else data)
    state = saved["state_dict"] if checkpoint_step is None else saved["checkpoints"][
        checkpoint_step]
    model.load_state_dict(state)
    return model.train(False)


def checkpoint_steps(checkpoints_path: PathLike) -> list[int]:
    """The training steps saved in a ``checkpoints.pt``, in order."""
    import torch

    return sorted(torch.load(checkpoints_path, weights_only=False)["checkpoints"])


def select_checkpoints(saved_steps: Sequence[int], num: int) -> list[int]:
    """``num`` of the saved steps at evenly spaced positions, first and last included.

    The saved steps are log-spaced, so the selection is too: initialization, a few early steps
    where most change happens, and the end of training.
    """
    steps = sorted(saved_steps)
    if not 2 <= num <= len(steps):
        raise ValueError(f"cannot select {num} checkpoints from the {len(steps)} saved; set "
                         f"analysis.trajectory.num_checkpoints to at most training.num_checkpoints")
    positions = np.round(np.linspace(0, len(steps) - 1, num)).astype(int)
    return [steps[position] for position in positions]


def sampler_config(sampling_settings: Mapping, seed: int) -> SGLDConfig:
    """An ``SGLDConfig`` from a ``sampling`` config section (keys it does not own are ignored)."""
    from losskernel.sgld import SGLDConfig

    fields = SGLDConfig.__dataclass_fields__
    values = {key: value for key, value in sampling_settings.items() if key in fields}
    return SGLDConfig(**values, seed=seed)


def sample(
    task: str, data_settings: Mapping, kernel_input_settings: Mapping,
    sampling_settings: Mapping, seed: int, *, model_path: PathLike, traces_path: PathLike,
    record: Record, checkpoint: Mapping[str, int] | None = None, threads: int = 1,
    progress: bool = True, chains: Sequence[int] | None = None,
    state_dir: PathLike | None = None, save_every_seconds: float = 60.0,
) -> None:
    """SGLD around a trained model; write the per-sample loss traces of the kernel inputs.

    Without ``checkpoint`` the model is the final ``model.pt``. With ``checkpoint =
    {"index": i, "num_checkpoints": n}``, ``model_path`` is a ``checkpoints.pt`` and SGLD is
    localized at the i-th of n checkpoints chosen by ``select_checkpoints``. ``chains`` runs
    only those chains (one workflow job per chain); they are the same chains a run of all
    would make.

    With ``state_dir``, each chain saves its progress there (``chain<c>.state.pt``) every
    ``save_every_seconds`` and on SIGTERM, then stops; run again, it resumes from the saved
    draw with identical results on the CPU. The state files are deleted once the traces are
    written.

    On the CPU, a job's ``threads`` go to chains side by side before threads within a chain
    (``threads // chains_at_once`` each): a small model's SGLD step does not spread over
    threads, so on 2 cores two chains of one thread beat one chain of two by about a quarter
    (``benchmarks/RESULTS.md``).
    """
    from losskernel.experiments import get_task
    from losskernel.losses import cross_entropy_per_sample
    from losskernel.sgld import Resumable, evaluate_per_sample_losses, sample_chains

    set_threads(threads)
    module = get_task(task)
    data = module.make_data(data_settings)
    step = None
    if checkpoint is not None:
        step = select_checkpoints(checkpoint_steps(model_path),
                                  checkpoint["num_checkpoints"])[checkpoint["index"]]
    model = load_model(task, data_settings, model_path, checkpoint_step=step, data=data)
    train_data, strata = module.training_split(data)
    inputs = module.select_kernel_inputs(data, kernel_input_settings)
    input_data = data.tensors(inputs)
    config = sampler_config(sampling_settings, seed)
    resumable = None
    if state_dir is not None:
        stop = _stop_on_sigterm()
        resumable = lambda chain: Resumable(  # noqa: E731
            Path(state_dir) / f"chain{chain}.state.pt", save_every_seconds, stop)
    device = sampling_settings.get("device", "cpu")
    num_chains = config.num_chains if chains is None else len(chains)
    chains_at_once = max(1, min(int(threads), num_chains)) if device == "cpu" else 1
    set_threads(threads // chains_at_once)
    traces_by_chain = sample_chains(
        model, cross_entropy_per_sample, train_data, input_data, config, chains=chains,
        strata=strata if sampling_settings["stratify_by_task"] else None, progress=progress,
        device=device, resumable=resumable, parallel_chains=chains_at_once,
    )
    set_threads(threads)
    init_loss = evaluate_per_sample_losses(model, cross_entropy_per_sample, input_data,
                                           config.eval_batch_size).numpy()
    coords = {name: inputs[name].to_numpy() for name in inputs.columns if name != "obs_id"}
    attrs = dict(record) if step is None else {**record, "checkpoint_step": step}
    dataset = traces.make_trace_dataset(traces_by_chain, init_loss, inputs["obs_id"].to_numpy(),
                                        config, obs_coords=coords, attrs=attrs)
    traces.save_traces(dataset, traces_path)
    if state_dir is not None:
        for chain in traces_by_chain:
            (Path(state_dir) / f"chain{chain}.state.pt").unlink(missing_ok=True)


def _stop_on_sigterm():
    """Install a SIGTERM handler that asks running chains to save and stop; return the check."""
    import signal

    requested = []
    signal.signal(signal.SIGTERM, lambda signum, frame: requested.append(signum))
    return lambda: bool(requested)


def merge_chains(chain_paths: Sequence[PathLike], *, traces_path: PathLike,
                 record: Record) -> None:
    """One trace file from the per-chain files of a run (chains in order; values unchanged)."""
    dataset = traces.merge_traces([traces.load_traces(path) for path in chain_paths])
    dataset.attrs.update(record)
    traces.save_traces(dataset, traces_path)


def kernel(traces_path: PathLike, kind: str, centring: str, *, kernel_path: PathLike,
           record: Record) -> None:
    """The covariance or correlation kernel of a trace file."""
    dataset = kernels.kernel_dataset(traces.load_traces(traces_path), kind, centring)
    dataset.attrs.update(record)
    kernels.save_kernel(dataset, kernel_path)


def obs_table(dataset) -> pd.DataFrame:
    """The per-input coordinates of a trace or kernel dataset as a table with ``obs_id``."""
    columns = {name: coord.values for name, coord in dataset.coords.items()
               if coord.dims == ("obs_id",)}
    return pd.DataFrame(columns)


def separation(
    task: str, analysis_settings: Mapping, *, correlation_path: PathLike,
    traces_path: PathLike, metrics_path: PathLike, scores_path: PathLike, record: Record,
) -> None:
    """Task separation readings of one seed's kernel and the cross-task covariance test.

    Writes ``metrics`` (metric, value) and per-input ``scores`` (one column per kNN reading).
    """
    from losskernel.experiments import get_task

    module = get_task(task)
    correlation = kernels.load_kernel(correlation_path)
    inputs = obs_table(correlation)
    R = correlation["kernel"].values.astype(np.float64)
    groups = inputs["task"].to_numpy()
    k = analysis_settings["knn_k"]
    rows: dict[str, float] = {}
    scores = inputs[["obs_id", "task"]].copy()
    for reading, (edge_rule, _) in KNN_READINGS.items():
        auc, score = metrics.knn_vote_auc(R, groups, k, module.excluded_edges(inputs, edge_rule))
        rows[reading] = auc
        scores[reading] = score
    rows["roc_auc_pairwise"] = metrics.pairwise_separation_auc(R, groups)
    means = metrics.block_means(R, groups)
    rows["within_task_mean_R"] = means.pop("within")
    rows["cross_task_mean_R"] = means.pop("cross")
    rows.update({f"{key}_mean_R": value for key, value in means.items()})

    losses = traces.load_traces(traces_path)["loss"].transpose("chain", "draw", "obs_id").values
    names = np.unique(groups)
    covariance, standard_error, z = metrics.cross_group_covariance_z(
        losses, groups == names[0], groups == names[1], analysis_settings["standard_error_batches"]
    )
    rows.update(cross_task_K=covariance, cross_task_K_se=standard_error, cross_task_z=z)
    write_tsv(pd.DataFrame({"metric": list(rows), "value": list(rows.values())}), metrics_path,
              record)
    write_tsv(scores, scores_path, record)


def read_tsv(path: PathLike) -> pd.DataFrame:
    return pd.read_csv(path, sep="\t", comment="#")


def summarize(
    experiment: str, seed_metrics: Mapping[int, Sequence[PathLike]],
    experiment_metrics: Sequence[PathLike], headline_metrics: Sequence[str], *,
    summary_path: PathLike, headline_path: PathLike, record: Record,
) -> None:
    """Every metric of every seed in one table, and the experiment's headline rows.

    ``seed_metrics`` maps each SGLD seed to its (metric, value) tables; ``experiment_metrics``
    are tables of metrics with one value per experiment (the trajectory's gain), reported with
    ``n = 1`` and no spread. A per-seed headline value is the mean over seeds with the standard
    deviation as spread, except ``cross_task_z``: the seeds' cross-task covariances are averaged
    and divided by their combined standard error ``sqrt(sum se_s²) / n``, and the headline is
    ``|z|`` of that mean.
    """
    tables = [read_tsv(path).assign(seed=seed, source=str(path))
              for seed, paths in seed_metrics.items() for path in paths]
    tables += [read_tsv(path).assign(seed=pd.NA, source=str(path)) for path in experiment_metrics]
    gathered = pd.concat(tables, ignore_index=True)
    write_tsv(gathered[["metric", "seed", "value", "source"]], summary_path, record)
    per_seed = gathered.dropna(subset=["seed"])
    wide = per_seed.pivot(index="seed", columns="metric", values="value")
    single = gathered[gathered["seed"].isna()].set_index("metric")["value"]
    rows = []
    for metric in headline_metrics:
        if metric in single:
            value, spread, n = single[metric], float("nan"), 1
        elif metric == "cross_task_z":
            combined_se = np.sqrt((wide["cross_task_K_se"] ** 2).sum()) / len(wide)
            value = abs(wide["cross_task_K"].mean() / combined_se)
            spread, n = wide["cross_task_z"].std(ddof=1), len(wide)
        elif metric in wide:
            value, spread, n = wide[metric].mean(), wide[metric].std(ddof=1), len(wide)
        else:
            raise ValueError(f"headline metric {metric!r} of {experiment} is in none of the "
                             f"metric tables; they hold {sorted({*wide.columns, *single.index})}")
        rows.append({"experiment": experiment, "metric": metric, "value": value,
                     "spread": spread, "n": n, "source": str(summary_path)})
    write_tsv(pd.DataFrame(rows), headline_path, record)


def headline(fragment_paths: Sequence[PathLike], *, output_path: PathLike, record: Record) -> None:
    """Concatenate the experiments' headline rows into ``headline.tsv``."""
    table = pd.concat([read_tsv(path) for path in fragment_paths], ignore_index=True)
    write_tsv(table, output_path, record)


def latex_macros(headline_path: PathLike, settings: Mapping[str, Mapping[str, object]], *,
                 output_path: PathLike, record: Record) -> None:
    """One LaTeX macro per headline number (value, spread and n) and per quoted setting.

    ``modarith roc_auc`` becomes ``\\lkModarithRocAuc`` (value), ``\\lkModarithRocAucSpread`` and
    ``\\lkModarithRocAucN``; the setting ``knn_k`` of ``modarith`` becomes
    ``\\lkModarithSettingKnnK``. Macro names keep letters only.
    """
    table = read_tsv(headline_path)
    lines = [f"% generated from {headline_path}; do not edit\n",
             *(f"% {key}: {value}\n" for key, value in record.items() if key != "config")]
    for row in table.itertuples():
        name = "lk" + _camel(f"{row.experiment} {row.metric}")
        lines.append(f"\\newcommand{{\\{name}}}{{{row.value:.3f}}}\n")
        spread = "--" if pd.isna(row.spread) else f"{row.spread:.3f}"
        lines.append(f"\\newcommand{{\\{name}Spread}}{{{spread}}}\n")
        lines.append(f"\\newcommand{{\\{name}N}}{{{int(row.n)}}}\n")
    for experiment, values in settings.items():
        for key, value in values.items():
            name = "lk" + _camel(f"{experiment} setting {key}")
            lines.append(f"\\newcommand{{\\{name}}}{{{value}}}\n")
    Path(output_path).parent.mkdir(parents=True, exist_ok=True)
    Path(output_path).write_text("".join(lines))


def _camel(text: str) -> str:
    words = "".join(c if c.isalpha() else " " for c in text).split()
    return "".join(word[:1].upper() + word[1:] for word in words)


def embed(analysis_settings: Mapping, task: str, *, correlation_paths: Sequence[PathLike],
          embedding_path: PathLike, record: Record) -> None:
    """2-D UMAPs from R, one per kernel, all with the same hyperparameters and edge rule.

    One process embeds them all, so numba's compilation on the first UMAP is paid once. The
    output has one row per (``embedding``, input) with ``umap_1``, ``umap_2`` and the inputs'
    coordinates; ``embedding`` names the kernel's run directory (``seed0``, ``checkpoint3``).
    With 3 in ``umap.dimensions``, the first kernel (the figure seed's) is also embedded in 3-D,
    as ``seed0-3d`` with ``umap_3``.
    """
    from losskernel.embedding import embed_umap
    from losskernel.experiments import get_task

    settings = analysis_settings["umap"]
    tables = []
    for position, path in enumerate(correlation_paths):
        name = Path(path).parent.name
        correlation = kernels.load_kernel(path)
        inputs = obs_table(correlation)
        dimensions = settings.get("dimensions", [2]) if position == 0 else [2]
        for components in sorted({2, *dimensions}):
            coords = embed_umap(
                correlation["kernel"].values, n_components=components,
                n_neighbors=settings["n_neighbors"], min_dist=settings["min_dist"],
                seed=settings["seed"],
                excluded_edges=get_task(task).excluded_edges(inputs, settings["excluded_edges"]),
            )
            columns = {f"umap_{axis + 1}": coords[:, axis] for axis in range(components)}
            label = name if components == 2 else f"{name}-{components}d"
            tables.append(inputs.assign(embedding=label, **columns))
    write_tsv(pd.concat(tables, ignore_index=True), embedding_path, record)


def figures(
    experiment: str, seeds: Sequence[int], figure_seed: int, knn_k: int, *,
    correlation_path: PathLike,
    embedding_path: PathLike,
    scores_paths: Sequence[PathLike], metrics_paths: Sequence[PathLike],
    heatmap_path: PathLike, distributions_path: PathLike, umap_path: PathLike,
    roc_path: PathLike, record: Record,
) -> None:
    """The experiment's four figures: heatmap, distributions, UMAP and ROC curves.

    ``correlation_path`` and ``embedding_path`` belong to ``figure_seed``; the ROC figure shows
    the strict reading of every seed and the other readings of the figure seed.
    """
    from losskernel import plotting

    correlation = kernels.load_kernel(correlation_path)
    inputs = obs_table(correlation)
    R = correlation["kernel"].values
    groups = inputs["task"].to_numpy()
    secondary = inputs["label"].to_numpy() if "label" in inputs else None
    plotting.save_figure(plotting.plot_kernel_heatmap(
        R, groups, f"{experiment}: R sorted by task, then output", secondary), heatmap_path, record)
    plotting.save_figure(plotting.plot_kernel_distributions(
        R, groups, f"{experiment}: off-diagonal R"), distributions_path, record)
    embedding = read_tsv(embedding_path)
    embedding = embedding[embedding["embedding"] == f"seed{figure_seed}"]
    plotting.save_figure(plotting.plot_embedding(
        embedding[["umap_1", "umap_2"]].to_numpy(), embedding["task"].to_numpy(),
        f"{experiment}: UMAP of d = sqrt(2(1 - R)),\nsame-output edges removed"), umap_path, record)
    curves = []
    for seed, scores_path, metrics_path in zip(seeds, scores_paths, metrics_paths, strict=True):
        scores, values = read_tsv(scores_path), read_tsv(metrics_path).set_index("metric")["value"]
        positive = scores["task"].to_numpy() == np.unique(scores["task"])[0]
        readings = list(KNN_READINGS) if seed == figure_seed else ["roc_auc"]
        for reading in readings:
            curves.append((f"seed {seed}, {KNN_READINGS[reading][1]} "
                           f"(AUC {values[reading]:.3f})", positive, scores[reading].to_numpy()))
        if seed == figure_seed:
            pairwise_auc = values["roc_auc_pairwise"]
    upper_i, upper_j = np.triu_indices(len(groups), k=1)
    curves.append((f"seed {figure_seed}, every pair scored by R (AUC {pairwise_auc:.3f})",
                   groups[upper_i] == groups[upper_j], R[upper_i, upper_j]))
    plotting.save_figure(plotting.plot_roc_curves(
        curves, f"{experiment}: task separation under R ({knn_k}-NN votes, pairs)"), roc_path,
        record)

