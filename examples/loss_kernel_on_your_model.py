# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # The loss kernel on your own model
#
# This page runs the method of the loss kernel (Adam, Furman and Hoogland,
# [arXiv 2509.26537](https://arxiv.org/abs/2509.26537)) on a model of our own, as you would on
# yours, with `losskernel.method` as a library and no workflow:
#
# 1. train a small network on scikit-learn's 8×8 digits, 10 % of whose training labels are
#    flipped to another class, until it has memorized them;
# 2. draw weights around the trained ones with SGLD and record every kernel input's loss at
#    every draw;
# 3. check that the draws can be trusted (R-hat, ESS, a drifting loss);
# 4. form the kernel `K` and its correlation form `R`;
# 5. ask whether the self-covariance `K(z,z)` finds the mislabelled points, and whether it
#    does better than the simplest scores that could explain it.
#
# It takes about a minute on 2 CPU cores and needs nothing beyond the project's environment.
# Run it from the repository root as a plain script:
#
# ```bash
# .venv/bin/python examples/loss_kernel_on_your_model.py
# ```
#
# As a script it prints its numbers and saves its figure to `loss-kernel-tutorial.png` in the
# current directory, or to the path in the environment variable `LOSSKERNEL_TUTORIAL_OUT`. In a
# notebook (this page was executed as one when the documentation was built) the figure is
# shown inline and saved only if that variable is set. Every number on this page is printed
# by the code; none is typed by hand.

# %% [markdown]
# ## Threads, seeds and settings
#
# Every random choice below has a seed, and torch runs on one thread per process: a sum split
# over threads can round differently with their number, and a small network's SGLD step gains
# nothing from a second thread. The cores go to the chains instead, which run side by side,
# `PARALLEL_CHAINS` at a time (at most 2). A chain's draws are the same however many run at
# once, so the numbers below do not depend on the number of cores, only the time does.

# %%
import os
import sys
import time
import warnings

import matplotlib.pyplot as plt
import numpy as np
import torch
from sklearn.datasets import load_digits
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import train_test_split
from torch import nn
from tqdm import TqdmWarning

# losskernel's progress bars come from tqdm.auto, which warns in a notebook without ipywidgets
with warnings.catch_warnings():
    warnings.simplefilter("ignore", TqdmWarning)
    from losskernel.method import (
        SGLDConfig,
        TensorData,
        compute_kernel,
        cross_entropy_per_sample,
        evaluate_per_sample_losses,
        sample_chains,
    )
from losskernel.readings.diagnostics import ess_bulk, ess_tail, split_rhat, stationarity_z

started = time.perf_counter()
IN_NOTEBOOK = "ipykernel" in sys.modules  # executed as a notebook (the docs) or as a script
FIGURE_PATH = os.environ.get("LOSSKERNEL_TUTORIAL_OUT", "loss-kernel-tutorial.png")

torch.set_num_threads(1)  # one thread per process: reproducible sums, and the cores go to chains
PARALLEL_CHAINS = min(2, os.cpu_count() or 1)

SEED = 0  # the data split, the flipped labels, the initial weights, the minibatches, SGLD
LABEL_NOISE = 0.1  # share of the training labels flipped to another class
NUM_KERNEL_INPUTS = 400  # training points whose losses are recorded at every draw
torch.manual_seed(SEED)
rng = np.random.default_rng(SEED)

# %% [markdown]
# ## The data: digits with flipped labels
#
# `load_digits` ships with scikit-learn: 1797 images of 8×8 pixels, ten classes. A stratified
# three-quarters are the training set, and 10 % of their labels are flipped to a class chosen
# at random among the nine others. `mislabelled` marks them; the model never sees it.

# %%
digits = load_digits()
pixels = (digits.data / 16).astype(np.float32)  # intensities 0..16 to [0, 1]
x_train, x_test, y_train, y_test = train_test_split(
    pixels, digits.target, train_size=0.75, stratify=digits.target, random_state=SEED)

flipped = rng.choice(len(y_train), round(LABEL_NOISE * len(y_train)), replace=False)
labels = y_train.copy()
labels[flipped] = (y_train[flipped] + rng.integers(1, 10, len(flipped))) % 10
mislabelled = np.zeros(len(labels), dtype=bool)
mislabelled[flipped] = True

train = TensorData(torch.from_numpy(x_train), torch.from_numpy(labels))
print(f"{len(train)} training images, {mislabelled.sum()} of them mislabelled; "
      f"{len(y_test)} test images")

# %% [markdown]
# ## The model: a small network that memorizes every label
#
# Any `torch.nn.Module` will do. Here a two-hidden-layer MLP is trained with AdamW until it
# fits the training labels, the flipped ones included: the setting of the paper's experiment,
# where a mislabelled point is one the network had to memorize against its class.

# %%
model = nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 128), nn.ReLU(),
                      nn.Linear(128, 10))
optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.0)
order = torch.Generator().manual_seed(SEED)
for _epoch in range(200):
    for batch in torch.randperm(len(train), generator=order).split(128):
        inputs, targets = train[batch]
        loss = nn.functional.cross_entropy(model(inputs), targets)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
model.eval()

with torch.no_grad():
    train_accuracy = (model(train.inputs).argmax(1) == train.targets).float().mean().item()
    test_accuracy = (model(torch.from_numpy(x_test)).argmax(1).numpy() == y_test).mean()
print(f"accuracy on the (noisy) training labels {train_accuracy:.3f}, "
      f"on the clean test set {test_accuracy:.3f}")

# %% [markdown]
# ## Kernel inputs
#
# The kernel is taken over a set of inputs whose losses are evaluated at every draw; the cost
# of a draw and the size of the `N x N` matrices grow with their number `N`. A random
# `NUM_KERNEL_INPUTS` of the training points, mislabelled ones included, keep this page fast;
# the project's digits experiment uses all of them. Each is scored with the label the model
# was trained on.

# %%
chosen = np.sort(rng.choice(len(train), NUM_KERNEL_INPUTS, replace=False))
kernel_inputs = TensorData(train.inputs[chosen], train.targets[chosen])
is_mislabelled = mislabelled[chosen]
print(f"{len(kernel_inputs)} kernel inputs, {is_mislabelled.sum()} of them mislabelled")

# %% [markdown]
# ## Drawing weights around the trained ones
#
# The draws come from a tempered posterior localized at the trained weights `w*`:
#
#     p(w) ∝ exp( -nβ · L(w) - (γ/2) · ||w - w*||² )
#
# with `L` the mean training loss. `sample_chains` starts every chain at `w*` and takes SGLD
# steps on minibatches of the training data; after a burn-in, every few steps it records the
# per-sample loss of each kernel input. The settings are those of the project's digits
# experiment (`config/config.yaml`), with more draws per chain (the kernel has fewer inputs,
# so a draw is cheap):
#
# - `step_size` ε: with `ε·γ` and `ε·nβ` well below 1 the sampler is stable;
# - `nbeta` nβ: how strongly the training loss pulls (the paper's `n·β`);
# - `localization` γ: how strongly the draws are held near `w*`;
# - 4 chains of 2000 draws, one every 5 steps after 300 steps of burn-in.
#
# For a model of your own, start from these and let the diagnostics below decide; the
# pipeline's calibration tries a grid of settings on short chains
# ([a recipe for a new model](../trust.md#a-recipe-for-a-new-model)).

# %%
config = SGLDConfig(
    step_size=1e-3, nbeta=50, localization=100,
    num_chains=4, num_burnin_steps=300, num_draws=2000, num_steps_between_draws=5,
    batch_size=64, seed=SEED,
)
sampling_started = time.perf_counter()
chains = sample_chains(model, cross_entropy_per_sample, train, kernel_inputs, config,
                       parallel_chains=PARALLEL_CHAINS, progress=False)
losses = np.stack([chains[c].loss for c in sorted(chains)])  # (chain, draw, input)
print(f"losses of shape {losses.shape} (chain, draw, input) "
      f"in {time.perf_counter() - sampling_started:.0f} s")

# %% [markdown]
# ## Can the draws be trusted?
#
# A kernel is a covariance over draws, so it is only as good as the draws. Each input's loss
# trace gets the diagnostics of any MCMC run (Vehtari et al. 2021, as ArviZ computes them),
# against the project's bounds (`analysis.diagnostics` in the config;
# [the bounds](../trust.md#the-bounds-and-what-happens-outside-them)):
#
# - split R-hat: near 1 when the chains' halves sample the same distribution; bound `≤ 1.01`;
# - bulk and tail effective sample size (ESS): how many independent draws the autocorrelated
#   ones are worth; bound `≥ 400`;
# - Geweke's z of each chain's minibatch loss, the first 10 % of the draws against the last
#   half: is the chain still drifting? Bound `|z| ≤ 3`.
#
# If they fail: raise `num_draws` (or `num_chains`) first; `R-hat² - 1` and `1/ESS` shrink
# roughly as one over the number of draws. If the loss still drifts, or R-hat stays high as
# the chains grow, the step size is too small to mix or too large to be stable: try ε three
# times smaller and larger and compare. A few inputs narrowly above 1.01 leave the kernel
# usable but noisy ([the digits experiment's diagnostics](../experiments/digits.md) show where
# the project's own runs stand).

# %%
MAX_RHAT, MIN_ESS, MAX_ABS_Z = 1.01, 400, 3.0  # the config's defaults
rhat = split_rhat(losses)  # one value per kernel input
bulk = ess_bulk(losses)
ess = np.minimum(bulk, ess_tail(losses))
geweke = stationarity_z(np.stack([chains[c].batch_loss for c in sorted(chains)]))
print(f"worst R-hat {np.nanmax(rhat):.4f} (bound {MAX_RHAT}); "
      f"{np.mean(rhat > MAX_RHAT):.1%} of the inputs above it")
print(f"median bulk ESS {np.median(bulk):.0f}; smallest bulk or tail ESS "
      f"{ess.min():.0f} (bound {MIN_ESS}, for every input)")
print(f"largest |Geweke z| of the minibatch loss {np.max(np.abs(geweke)):.2f} "
      f"(bound {MAX_ABS_Z:g})")
draws_ok = np.nanmax(rhat) <= MAX_RHAT and ess.min() >= MIN_ESS
draws_ok = draws_ok and np.max(np.abs(geweke)) <= MAX_ABS_Z
print("diagnostics: " + ("every input within the bounds" if draws_ok else
                         "OUTSIDE the bounds; read the kernel as indicative"))

# %% [markdown]
# ## The kernel and its correlation form
#
# With the draws stacked as `S = chains × draws` samples of the loss vector,
#
#     K(z, z') = Cov_w[ l(z; w), l(z'; w) ]      R(z, z') = K(z, z') / sqrt(K(z, z) K(z', z'))
#
# `compute_kernel` gives either from the `(chain, draw, input)` array, exactly symmetric.

# %%
K = compute_kernel(losses, kind="covariance")
R = compute_kernel(losses, kind="correlation")
self_covariance = np.diag(K)  # K(z, z): the variance of each input's loss over the draws
print(f"K and R of shape {K.shape}")

# %% [markdown]
# ## Does K(z,z) find the mislabelled points?
#
# The paper reports that mislabelled points have a larger self-covariance `K(z,z)`. Ranked by
# it, how well are they found (ROC-AUC: 1 perfect, 0.5 chance)? A score is only interesting
# beside the simplest ones that could explain it, so two baselines get the same test:
#
# - the loss at the trained weights `w*`, which needs no sampling at all;
# - the posterior mean loss, the mean over the same draws that give `K(z,z)`.
#
# `K(z,z)` is the variance of the loss over the draws, so the mean of the same draws is its
# nearest rival. The differences come with a 95 % interval from resampling the kernel inputs
# (a paired bootstrap); a difference whose interval holds 0 is no win.

# %%
loss_at_trained = evaluate_per_sample_losses(model, cross_entropy_per_sample, kernel_inputs,
                                             batch_size=1024).numpy()
scores = {
    "K(z,z)": self_covariance,
    "loss at w*": loss_at_trained,
    "posterior mean loss": losses.mean(axis=(0, 1)),
}
aucs = {name: roc_auc_score(is_mislabelled, score) for name, score in scores.items()}
for name, auc in aucs.items():
    print(f"ROC-AUC of {name:<20} {auc:.3f}")

bootstrap = np.random.default_rng(SEED)
resamples = [bootstrap.integers(0, len(is_mislabelled), len(is_mislabelled))
             for _ in range(500)]
resamples = [rows for rows in resamples if 0 < is_mislabelled[rows].sum() < len(rows)]
for name in ("loss at w*", "posterior mean loss"):
    differences = [roc_auc_score(is_mislabelled[rows], scores["K(z,z)"][rows])
                   - roc_auc_score(is_mislabelled[rows], scores[name][rows])
                   for rows in resamples]
    low, high = np.quantile(differences, [0.025, 0.975])
    verdict = ("K(z,z) wins" if low > 0 else f"{name} wins" if high < 0
               else "no clear winner")
    print(f"K(z,z) minus {name}: {aucs['K(z,z)'] - aucs[name]:+.3f} "
          f"(95 % interval {low:+.3f} to {high:+.3f}): {verdict}")

# %% [markdown]
# Read the two verdicts together. Against the loss at `w*`, the question is whether sampling
# around the trained weights helps at all. Against the posterior mean loss, it is whether the
# covariance adds anything that the mean of the same draws does not already have: if the mean
# ties or wins, the draws found the mislabelled points and `K(z,z)` is just one way to read
# them.

# %% [markdown]
# ## The figure
#
# Left: `K(z,z)` of the clean and the mislabelled kernel inputs, on a log scale. Right: `R`
# with the inputs sorted by their training label, the mislabelled ones last within each
# label; blocks along the diagonal are labels whose losses move together.

# %%
figure, (left, right) = plt.subplots(1, 2, figsize=(11, 4.5), layout="constrained")
bins = np.geomspace(self_covariance.min(), self_covariance.max(), 40)
left.hist(self_covariance[~is_mislabelled], bins=bins, alpha=0.7, label="clean")
left.hist(self_covariance[is_mislabelled], bins=bins, alpha=0.7, label="mislabelled")
left.set(xscale="log", xlabel="K(z, z)", ylabel="kernel inputs",
         title=f"ROC-AUC of K(z, z): {aucs['K(z,z)']:.3f}")
left.legend()
by_label = np.lexsort((is_mislabelled, kernel_inputs.targets.numpy()))
image = right.imshow(R[np.ix_(by_label, by_label)], cmap="RdBu_r", vmin=-1, vmax=1,
                     interpolation="nearest")
sorted_labels = kernel_inputs.targets.numpy()[by_label]
starts = np.flatnonzero(np.r_[True, sorted_labels[1:] != sorted_labels[:-1]])
centres = (starts + np.r_[starts[1:], len(sorted_labels)]) / 2
right.set(title="R, inputs sorted by training label", xticks=centres, yticks=centres,
          xticklabels=sorted_labels[starts], yticklabels=sorted_labels[starts])
figure.colorbar(image, ax=right, shrink=0.8)

if not IN_NOTEBOOK or "LOSSKERNEL_TUTORIAL_OUT" in os.environ:
    figure.savefig(FIGURE_PATH, dpi=100)
    print(f"figure saved to {os.path.abspath(FIGURE_PATH)}")
if IN_NOTEBOOK:
    # the PNG itself, not plt.show(): the page gets the figure whatever matplotlib's backend
    # (under MPLBACKEND=Agg, as the tests set it, show() draws nothing)
    from io import BytesIO

    from IPython.display import Image, display

    png = BytesIO()
    figure.savefig(png, format="png", dpi=100)
    display(Image(png.getvalue()))
    plt.close(figure)
print(f"total time {time.perf_counter() - started:.0f} s")

# %% [markdown]
# ## On your own model
#
# Replace the model, the data and the loss, and keep the rest:
#
# - `sample_chains` takes any `torch.nn.Module`, any training data that returns a batch for
#   a tensor of indices (`TensorData` for tensors in memory) and any per-sample loss
#   `loss_fn(outputs, targets) -> (batch,)`;
# - start from the settings above, check R-hat, ESS and the drift, and raise the draws until
#   they pass;
# - one run is one SGLD seed: run a second `seed` (and a second trained model) to see how much
#   of what you read is the sampler's noise, and keep the baselines beside every claim.
#
# For many inputs, several seeds and models, and the tables and figures of the paper's
# experiments, the Snakemake workflow of this repository runs the same functions
# ([the digits experiment](../experiments/digits.md) asks this page's question with a CNN, all
# training inputs, three trained models and two SGLD seeds each;
# [the API reference](../api/method.md) documents every function used here).
