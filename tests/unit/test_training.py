import torch
from torch import nn

from losskernel.method.chains import TensorData
from losskernel.method.losses import cross_entropy_per_sample
from losskernel.schedule import log_spaced_steps
from losskernel.training import TrainingConfig, train_adamw


def test_log_spaced_steps_are_the_rounded_geometric_sequence_with_zero():
    # round(10001 ** (k / 28)) - 1 for k = 0..28, with 0: k = 0 and 1 both round to step 0,
    # so 28 distinct steps of the 30 asked for.
    assert log_spaced_steps(10_000, 30) == [
        0, 1, 2, 3, 4, 6, 9, 13, 18, 26, 36, 51, 71, 99, 138, 192, 267, 372, 517, 719, 999,
        1389, 1930, 2682, 3727, 5179, 7197, 10_000]
    assert log_spaced_steps(3, 10) == [0, 1, 2, 3]  # rounded steps collide: fewer than asked
    assert log_spaced_steps(500, 2) == [0, 500]
    assert log_spaced_steps(500, 1) == [0]


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
    history = result.history
    assert list(history["step"]) == list(range(0, result.final_step + 1, 10))  # eval_every
    # the patience rule: stop at the first evaluation 50 steps into the last run of
    # evaluations that met the target
    met = history["train_accuracy"] == 1.0
    first_of_last_run = int(history["step"][~met].max()) + 10
    assert met.iloc[-6:].all() and result.final_step == first_of_last_run + 50 < 2000
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


def test_each_step_is_adamw_with_the_configured_weight_decay_and_betas():
    """Three full-batch steps against AdamW written out (decoupled weight decay, bias-corrected
    moments): an optimizer that ignored ``weight_decay`` or ``betas`` lands elsewhere."""
    inputs = torch.randn(8, 3, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    targets = (inputs[:, 0] > 0).long()
    torch.manual_seed(0)
    model = nn.Linear(3, 2).double()
    lr, weight_decay, (beta1, beta2), eps = 0.1, 0.5, (0.5, 0.7), 1e-8
    config = TrainingConfig(learning_rate=lr, weight_decay=weight_decay, betas=(beta1, beta2),
                            max_steps=3, eval_every=1, num_checkpoints=2)
    result = train_adamw(model, cross_entropy_per_sample, TensorData(inputs, targets), config,
                         lambda m: {}, lambda metrics: None, progress=False)

    params = [p.detach().clone().requires_grad_(True) for p in model.parameters()]
    first = [torch.zeros_like(p) for p in params]
    second = [torch.zeros_like(p) for p in params]
    for t in range(1, 4):
        logits = inputs @ params[0].T + params[1]
        loss = cross_entropy_per_sample(logits, targets).mean()
        grads = torch.autograd.grad(loss, params)
        with torch.no_grad():
            for p, g, m, v in zip(params, grads, first, second, strict=True):
                p.mul_(1 - lr * weight_decay)
                m.mul_(beta1).add_((1 - beta1) * g)
                v.mul_(beta2).add_((1 - beta2) * g * g)
                m_hat, v_hat = m / (1 - beta1 ** t), v / (1 - beta2 ** t)
                p.sub_(lr * m_hat / (v_hat.sqrt() + eps))
    trained = result.checkpoints[3]
    torch.testing.assert_close(trained["weight"], params[0].detach(), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(trained["bias"], params[1].detach(), rtol=1e-12, atol=1e-12)
    # the yardstick: without the decay, or with the default betas, the weights differ
    plain = train_adamw(model, cross_entropy_per_sample, TensorData(inputs, targets),
                        TrainingConfig(learning_rate=lr, weight_decay=0.0, betas=(beta1, beta2),
                                       max_steps=3, eval_every=1, num_checkpoints=2),
                        lambda m: {}, lambda metrics: None, progress=False)
    assert not torch.allclose(plain.checkpoints[3]["weight"], trained["weight"], atol=1e-3)
