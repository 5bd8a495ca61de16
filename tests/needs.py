"""Outside resources some tests need: how to tell each is missing and which install step gives it.

A test that needs one calls ``require(name)`` (in its body or in a fixture). The call returns
when the resource is present. Otherwise the test skips and names the resource. Under CI (``CI``
set, as .ci/run sets it) the test fails instead, also naming the install step, so a forgotten
step cannot pass unseen.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SLURM_SCRIPTS = ROOT.parent / "shared" / "slurm"
TEX_PACKAGES = "latexmk texlive-latex-base texlive-latex-recommended"


@dataclass(frozen=True)
class Resource:
    """Something a test needs that lives outside the repository and the virtual environment."""

    description: str
    missing: Callable[[], str | None]
    """Why the resource is unavailable here, or None when it is available."""
    install: str
    """The install step that provides it, as .ci/run's setup runs it."""


def _wordnet_missing() -> str | None:
    from losskernel.tasks.wordnet import DEBIAN_WORDNET_DIR

    absent = [name for name in ("data.noun", "index.sense")
              if not (DEBIAN_WORDNET_DIR / name).is_file()]
    return f"{DEBIAN_WORDNET_DIR} lacks {', '.join(absent)}" if absent else None


def _fashion_mnist_missing() -> str | None:
    from losskernel.tasks import fashion

    try:
        fashion.check_root(fashion.DEBIAN_DIR)
    except ValueError as error:
        return str(error)
    return None


def _program_missing(program: str) -> Callable[[], str | None]:
    return lambda: None if shutil.which(program) else f"{program} is not on PATH"


def _package_missing(package: str) -> Callable[[], str | None]:
    return lambda: (None if importlib.util.find_spec(package)
                    else f"the {package} package cannot be imported")


def _slurm_missing() -> str | None:
    if not (SLURM_SCRIPTS / "up.sh").is_file():
        return f"{SLURM_SCRIPTS}/up.sh is missing"
    if os.geteuid() != 0:
        return f"{SLURM_SCRIPTS}/up.sh must run as root"
    if shutil.which("apt-get") is None and shutil.which("slurmctld") is None:
        return "neither slurmctld nor apt-get to install it"
    return None


RESOURCES: dict[str, Resource] = {
    "wordnet": Resource(
        "Debian's WordNet 3.0", _wordnet_missing,
        "setup.sh installs it as root: apt-get install wordnet-base wordnet-sense-index"),
    "fashion_mnist": Resource(
        "Debian's Fashion-MNIST", _fashion_mnist_missing,
        "setup.sh installs it as root: apt-get install dataset-fashion-mnist"),
    "chromium": Resource(
        "headless Chromium", _program_missing("chromium"),
        "setup.sh installs it as root: apt-get install --no-install-recommends chromium"),
    "latexmk": Resource(
        "latexmk and TeX", _program_missing("latexmk"),
        f"setup.sh installs them as root: apt-get install --no-install-recommends "
        f"{TEX_PACKAGES}"),
    "arviz": Resource(
        "the arviz package", _package_missing("arviz"),
        "requirements.lock pins arviz; setup.sh installs it: pip install -r requirements.lock"),
    "ruff": Resource(
        "the ruff linter", _package_missing("ruff"),
        "requirements.lock pins ruff; setup.sh installs it: pip install -r requirements.lock"),
    "snakefmt": Resource(
        "the snakefmt formatter", _package_missing("snakefmt"),
        "requirements.lock pins snakefmt; setup.sh installs it: pip install -r requirements.lock"),
    "slurm": Resource(
        "a local SLURM cluster", _slurm_missing,
        "the shared checkout beside this repository provides ../shared/slurm/up.sh, which "
        "installs and starts SLURM's Debian packages when run as root"),
}


def require(name: str) -> None:
    """Return when resource ``name`` (a key of ``RESOURCES``) is available. Otherwise skip
    the calling test, naming it; under CI (``CI`` set) fail, also naming the install step."""
    resource = RESOURCES[name]
    why = resource.missing()
    if why is None:
        return
    if os.environ.get("CI"):
        pytest.fail(f"CI must have {resource.description} ({name}): {why}. {resource.install}",
                    pytrace=False)
    pytest.skip(f"{resource.description} is not available ({name}): {why}. {resource.install}")
