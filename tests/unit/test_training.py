import torch
from torch import nn

from losskernel.method.chains import TensorData
from losskernel.method.losses import cross_entropy_per_sample
from losskernel.schedule import log_spaced_steps
from losskernel.training import TrainingConfig, train_adamw


def test_log_spaced_steps_start_at_zero_and_end_at_max():
    steps = log_spaced_steps(10_000, 30)
    assert steps[0] == 0 and steps[-1] == 10_000
    assert steps == sorted(set(steps)) and 20 <= len(steps) <= 30
    assert steps[1] == 1 and steps[2] - steps[1] <= steps[-1] - steps[-2]  # dense early


def test_training_fits_and_keeps_checkpoints():
    generator = torch.Generator().manual_seed(0)
    inputs = torch.randn(64, 4, generator=generator)
    targets = (inputs[:, 0] > 0).long()
    data = TensorData(inputs, targets)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 2))

    def accuracy(m):
        with torch.no_grad():
            return {"train_accuracy": float((m(inputs).argmax(1) == targets).float().mean())}

    config = TrainingConfig(learning_rate=1e-2, weight_decay=0.0, max_steps=2000,
                            patience_steps=50, eval_every=10, num_checkpoints=10)
    result = train_adamw(model, cross_entropy_per_sample, data, config, accuracy,
                              lambda m: m["train_accuracy"] == 1.0, progress=False)
    assert result.history["train_accuracy"].iloc[-1] == 1.0
    assert result.final_step < 2000  # stopped early by the patience rule
    assert 0 in result.checkpoints and result.final_step in result.checkpoints
    first = result.checkpoints[0]
    for name, tensor in model.state_dict().items():  # the input model is untouched
        torch.testing.assert_close(tensor, first[name])
    assert result.converged is True
    assert result.outcome(2000) == {"converged": True, "final_step": result.final_step,
                                    "max_steps": 2000}


def test_the_outcome_says_whether_the_target_held_at_the_last_evaluation():
    inputs = torch.randn(16, 4, generator=torch.Generator().manual_seed(0))
    data = TensorData(inputs, (inputs[:, 0] > 0).long())
    config = TrainingConfig(learning_rate=1e-2, weight_decay=0.0, max_steps=20, eval_every=5)

    def outcome(verdicts):
        """Train with ``is_converged`` giving these verdicts, one per evaluation."""
        answers = iter(verdicts)
        torch.manual_seed(0)
        model = nn.Linear(4, 2)
        result = train_adamw(model, cross_entropy_per_sample, data, config, lambda m: {},
                             lambda metrics: next(answers), progress=False)
        return result.final_step, result.converged

    assert outcome([False] * 5) == (20, False)  # never met: ran to max_steps
    assert outcome([True, True, False, False, True]) == (20, True)  # met at the end
    assert outcome([True, False, True, True, False]) == (20, False)  # lost it at the end
    assert outcome([None] * 5) == (20, None)  # no target
