"""Prop. 2: with literally disjoint parameters per task, the cross-task kernel vanishes."""

import numpy as np
import pytest
import torch
from torch import nn

from losskernel.method import kernel, parallel, sgld
from losskernel.method.losses import cross_entropy_per_sample
from losskernel.readings import separation
from losskernel.tasks import modarith
from losskernel.training import TrainingConfig, train_adamw

DATA_SETTINGS = {"modulus": 11, "operations": ["add", "div"], "train_fraction": 0.8,
                 "split_seed": 0}
MODEL_SETTINGS = {"architecture": "mlp", "disjoint_by_task": True, "d_model": 8, "num_heads": 1,
                  "d_mlp": 32, "embed_std": 0.5, "init_seed": 0}


class SharedLogitScale(nn.Module):
    """The disjoint model with one parameter both tasks share, a scale on all logits, which is
    all that SGLD moves: every loss is then a function of one shared scalar."""

    def __init__(self, disjoint: nn.Module) -> None:
        super().__init__()
        self.disjoint = disjoint.requires_grad_(False)
        self.log_scale = nn.Parameter(torch.zeros(()))

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.disjoint(tokens) * self.log_scale.exp()


def cross_task_statistics(share_a_parameter: bool) -> tuple[float, float]:
    data = modarith.make_data(DATA_SETTINGS)
    train, strata = modarith.training_split(data)
    trained = train_adamw(
        modarith.build_model(MODEL_SETTINGS, data), cross_entropy_per_sample, train,
        TrainingConfig(learning_rate=1e-2, weight_decay=0.0, max_steps=300, eval_every=300),
        evaluate=lambda m: {}, is_converged=lambda m: False, progress=False).model
    if share_a_parameter:
        trained = SharedLogitScale(trained)
    inputs = modarith.select_kernel_inputs(data, {"split": "train", "per_task": 40, "seed": 0})
    config = sgld.SGLDConfig(step_size=1e-3, nbeta=20.0, localization=50.0, num_chains=4,
                             num_burnin_steps=50, num_draws=400, num_steps_between_draws=10,
                             batch_size=32, seed=0)
    chains = parallel.sample_chains(trained, cross_entropy_per_sample, train,
                                    data.tensors(inputs), config, strata=strata, progress=False)
    losses = np.stack([chains[c].loss for c in sorted(chains)])
    task = inputs["task"].to_numpy()
    _, _, z = separation.cross_group_covariance_z(losses, task == "add", task == "div", 10)
    return z, separation.block_means(kernel.compute_kernel(losses), task)["cross"]


def test_disjoint_model_has_zero_cross_task_kernel_within_noise():
    z, cross_R = cross_task_statistics(share_a_parameter=False)
    assert abs(z) < 3
    assert abs(cross_R) < 0.01


def test_one_shared_parameter_breaks_it():
    """The control can fail: a single parameter both tasks use couples their losses.

    R sees the coupling at once; z needs more draws because the losses, exponential in the
    shared scale, are heavy-tailed.
    """
    z, cross_R = cross_task_statistics(share_a_parameter=True)
    assert cross_R > 0.9
    assert z > 3


@pytest.mark.parametrize("task_index", [0, 1])
def test_disjoint_model_routes_each_task_to_its_own_parameters(task_index):
    data = modarith.make_data(DATA_SETTINGS)
    model = modarith.build_model(MODEL_SETTINGS, data)
    rows = data.examples[data.examples["task"] == data.operations[task_index]]
    batch = data.tensors(rows)
    cross_entropy_per_sample(model(batch.inputs), batch.targets).sum().backward()
    for index, network in enumerate(model.networks):
        touched = any(p.grad is not None and p.grad.abs().sum() > 0 for p in network.parameters())
        assert touched == (index == task_index)
