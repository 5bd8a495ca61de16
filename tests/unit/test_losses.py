import math

import pytest
import torch
import torch.nn.functional as F

from losskernel.method.losses import cross_entropy_per_sample, cross_entropy_per_sample_float64

FLOAT32_UNIT = 2.0**-24  # float32's unit roundoff


def test_matches_torch_cross_entropy_for_ordinary_logits():
    generator = torch.Generator().manual_seed(0)
    logits = torch.randn(64, 10, generator=generator)
    targets = torch.randint(0, 10, (64,), generator=generator)
    expected = F.cross_entropy(logits.double(), targets, reduction="none")
    losses = cross_entropy_per_sample(logits, targets)
    assert losses.dtype == torch.float32
    torch.testing.assert_close(losses.double(), expected, rtol=1e-6, atol=0.0)


def test_keeps_tiny_losses_that_float32_rounds_to_zero():
    logits = torch.tensor([[30.0, 0.0, 0.0]])
    exact = 2 * math.exp(-30.0)  # log(1 + 2e^-30) = 2e^-30 to 1e-13 relative
    assert F.cross_entropy(logits, torch.tensor([0]), reduction="none").item() == 0.0
    loss = cross_entropy_per_sample(logits, torch.tensor([0]))[0].item()
    assert loss == pytest.approx(exact, rel=(30 + math.log(3) + 4) * 2 * FLOAT32_UNIT)


def logits_with_losses(losses: torch.Tensor, num_classes: int, scale: float,
                       generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Float32 logits whose exact cross-entropies are ``losses`` (float64): random logits of
    spread ``scale``, with the target's logit set to ``z_y = x - log(expm1(l))``, so that
    ``softplus(x - z_y) = l`` for ``x = logsumexp`` of the other logits."""
    logits = torch.randn(len(losses), num_classes, generator=generator,
                         dtype=torch.float64) * scale
    targets = torch.randint(0, num_classes, (len(losses),), generator=generator)
    others = logits.scatter(1, targets[:, None], float("-inf")).logsumexp(1)
    log_expm1 = losses + torch.log(-torch.expm1(-losses))  # log(expm1(l)) without overflow
    logits = logits.scatter(1, targets[:, None], (others - log_expm1)[:, None])
    return logits.float(), targets


REGIMES = {  # name: (smallest and largest loss, spread of the logits)
    "tiny": (1e-37, 1e-7, 3.0),
    "tiny, wide logits": (1e-30, 1e-7, 100.0),
    "ordinary": (1e-7, 10.0, 3.0),
    "huge margins": (10.0, 1e4, 100.0),
}


@pytest.mark.parametrize("num_classes", [10, 1000])
@pytest.mark.parametrize("regime", list(REGIMES))
def test_float32_is_within_the_stated_bound_of_the_float64_formula(num_classes, regime):
    """The docstring's bound, ``|l_32 - l_64| / l_64 <= (|ln l| + ln C + 4) 2^-23``, at most
    1.2e-5 for losses down to 1e-37 and 1000 classes; the reference is the same formula in
    float64 on the same float32 logits."""
    smallest, largest, scale = REGIMES[regime]
    generator = torch.Generator().manual_seed(num_classes)
    wanted = torch.logspace(math.log10(smallest), math.log10(largest), 500,
                            dtype=torch.float64)
    logits, targets = logits_with_losses(wanted, num_classes, scale, generator)
    reference = cross_entropy_per_sample(logits.double(), targets)
    losses = cross_entropy_per_sample(logits, targets)
    assert losses.dtype == torch.float32 and reference.dtype == torch.float64
    # the float32 logits land close to the losses asked for: the regime is the one named
    torch.testing.assert_close(reference, wanted, rtol=1e-3, atol=0.0)
    relative = (losses.double() - reference).abs() / reference
    bound = (reference.log().abs() + math.log(num_classes) + 4) * 2 * FLOAT32_UNIT
    assert (relative <= bound).all(), f"worst at {reference[(relative / bound).argmax()]:.2e}"
    assert relative.max() <= 1.2e-5


def test_low_precision_logits_are_taken_as_float32():
    logits = torch.tensor([[2.0, -1.0, 0.5]])
    losses = cross_entropy_per_sample(logits.bfloat16(), torch.tensor([0]))
    assert losses.dtype == torch.float32
    torch.testing.assert_close(losses, cross_entropy_per_sample(logits.bfloat16().float(),
                                                                torch.tensor([0])))


def test_gradient_flows_to_float32_logits_and_matches_float64():
    generator = torch.Generator().manual_seed(1)
    logits = torch.randn(4, 5, generator=generator, requires_grad=True)
    targets = torch.tensor([0, 1, 2, 3])
    cross_entropy_per_sample(logits, targets).sum().backward()
    assert logits.grad is not None and logits.grad.dtype == torch.float32
    wide = logits.detach().double().requires_grad_()
    cross_entropy_per_sample(wide, targets).sum().backward()
    torch.testing.assert_close(logits.grad.double(), wide.grad, rtol=1e-6, atol=1e-7)


def test_leaves_the_logits_untouched():
    logits = torch.tensor([[1.0, 2.0], [3.0, -1.0]])
    before = logits.clone()
    cross_entropy_per_sample(logits, torch.tensor([1, 0]))
    assert torch.equal(logits, before)


def test_the_training_loss_is_the_float64_form_on_float32_logits():
    logits = torch.tensor([[30.0, 0.0, 0.0], [0.5, 1.0, -2.0]])
    targets = torch.tensor([0, 1])
    loss = cross_entropy_per_sample_float64(logits, targets)
    assert loss.dtype == torch.float64
    torch.testing.assert_close(loss, cross_entropy_per_sample(logits.double(), targets),
                               rtol=0, atol=0)
