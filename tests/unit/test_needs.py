"""tests/needs.py: a missing outside resource skips a test, and under CI fails it, naming the
install step."""

import dataclasses

import pytest
from tests import needs


@pytest.fixture(params=sorted(needs.RESOURCES))
def missing(request, monkeypatch) -> str:
    """The name of one resource, made missing by replacing its check."""
    name = request.param
    resource = dataclasses.replace(needs.RESOURCES[name], missing=lambda: "made missing")
    monkeypatch.setitem(needs.RESOURCES, name, resource)
    return name


def test_a_missing_resource_skips_without_ci(missing, monkeypatch):
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception) as skipped:
        needs.require(missing)
    assert f"({missing}): made missing" in str(skipped.value)
    assert needs.RESOURCES[missing].install in str(skipped.value)


def test_a_missing_resource_fails_under_ci_naming_the_install_step(missing, monkeypatch):
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception) as failed:
        needs.require(missing)
    message = str(failed.value)
    assert message.startswith(f"CI must have {needs.RESOURCES[missing].description} ({missing})")
    assert "made missing" in message and needs.RESOURCES[missing].install in message


def test_a_present_resource_returns_even_under_ci(monkeypatch):
    monkeypatch.setenv("CI", "true")
    monkeypatch.setitem(needs.RESOURCES, "arviz",
                        dataclasses.replace(needs.RESOURCES["arviz"], missing=lambda: None))
    assert needs.require("arviz") is None


@pytest.mark.parametrize(("name", "step"), [
    ("wordnet", "apt-get install wordnet-base wordnet-sense-index"),
    ("fashion_mnist", "apt-get install dataset-fashion-mnist"),
    ("chromium", "apt-get install --no-install-recommends chromium"),
    ("latexmk", "latexmk texlive-latex-base texlive-latex-recommended"),
    ("arviz", "requirements.lock pins arviz"),
    ("ruff", "requirements.lock pins ruff"),
    ("snakefmt", "requirements.lock pins snakefmt"),
    ("slurm", "../shared/slurm/up.sh"),
])
def test_each_install_step_is_the_one_setup_provides(name, step):
    assert step in needs.RESOURCES[name].install


def test_the_checks_see_what_they_look_for(monkeypatch, tmp_path):
    """The real checks, pointed at what is surely absent: an empty PATH, empty WordNet and
    Fashion-MNIST directories, unimportable packages, no ../shared beside the repository."""
    from losskernel.tasks import fashion, wordnet

    monkeypatch.setenv("PATH", str(tmp_path))
    assert needs.RESOURCES["chromium"].missing() == "chromium is not on PATH"
    assert needs.RESOURCES["latexmk"].missing() == "latexmk is not on PATH"
    monkeypatch.setattr(wordnet, "DEBIAN_WORDNET_DIR", tmp_path)
    assert needs.RESOURCES["wordnet"].missing() == f"{tmp_path} lacks data.noun, index.sense"
    monkeypatch.setattr(fashion, "DEBIAN_DIR", str(tmp_path))
    assert "train-images-idx3-ubyte.gz" in needs.RESOURCES["fashion_mnist"].missing()
    monkeypatch.setattr(needs.importlib.util, "find_spec", lambda name: None)
    for package in ("arviz", "ruff", "snakefmt"):
        assert needs.RESOURCES[package].missing() == f"the {package} package cannot be imported"
    monkeypatch.setattr(needs, "SLURM_SCRIPTS", tmp_path / "shared/slurm")
    assert needs.RESOURCES["slurm"].missing() == f"{tmp_path}/shared/slurm/up.sh is missing"
