import torch
import torch.nn.functional as F

from losskernel.method.losses import cross_entropy_per_sample


def test_matches_torch_cross_entropy_for_ordinary_logits():
    generator = torch.Generator().manual_seed(0)
    logits = torch.randn(64, 10, generator=generator)
    targets = torch.randint(0, 10, (64,), generator=generator)
    expected = F.cross_entropy(logits.double(), targets, reduction="none")
    torch.testing.assert_close(cross_entropy_per_sample(logits, targets), expected)


def test_keeps_tiny_losses_that_float32_rounds_to_zero():
    logits = torch.tensor([[30.0, 0.0, 0.0]])
    exact = 2 * torch.exp(torch.tensor(-30.0, dtype=torch.float64))  # log(1 + 2e^-30) ≈ 2e^-30
    assert F.cross_entropy(logits, torch.tensor([0]), reduction="none").item() == 0.0
    torch.testing.assert_close(cross_entropy_per_sample(logits, torch.tensor([0]))[0], exact,
                               rtol=1e-9, atol=0.0)


def test_gradient_flows_to_float32_logits():
    logits = torch.randn(4, 5, requires_grad=True)
    cross_entropy_per_sample(logits, torch.tensor([0, 1, 2, 3])).sum().backward()
    assert logits.grad is not None and logits.grad.dtype == torch.float32
