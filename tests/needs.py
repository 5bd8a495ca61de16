"""Outside resources some tests need, and how they skip (or fail in CI) without them."""

from __future__ import annotations

import os

import pytest


def fashion_mnist_missing() -> str | None:
    """Why Debian's Fashion-MNIST cannot be read here, or None when it can."""
    from losskernel.tasks import fashion

    try:
        fashion.check_root(fashion.DEBIAN_DIR)
    except ValueError as error:
        return str(error)
    return None


def require_fashion_mnist() -> None:
    """Skip the calling test when Debian's Fashion-MNIST is missing, naming the package; in CI
    (``CI`` set, as .ci/run sets it) a missing package is a failure: setup.sh installs it."""
    missing = fashion_mnist_missing()
    if missing is None:
        return
    if os.environ.get("CI"):
        pytest.fail(f"CI must have Fashion-MNIST (setup.sh installs it): {missing}")
    pytest.skip(f"Fashion-MNIST is not installed: {missing}")
