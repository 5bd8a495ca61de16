"""Every rule's conda environment is pinned and agrees with the pip lock setup.sh installs."""

import re
from pathlib import Path

import pytest
import yaml

from losskernel.tasks import BUILTIN_TASKS, load_task

ROOT = Path(__file__).resolve().parents[2]
LOCK = {
    name.lower().replace("_", "-"): version
    for name, version in (
        line.split("==", 1)
        for line in (ROOT / "requirements.lock").read_text().splitlines()
        if "==" in line and not line.startswith("#")
    )
}
CONDA_SPEC = re.compile(r"[a-z0-9][a-z0-9_.-]* =[0-9][0-9a-z.]*")
PIP_SPEC = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\[\]-]*==[0-9][0-9A-Za-z.+]*")
ENV_FILES = sorted((ROOT / "envs").glob("*.yaml"))
# the Python setup.sh makes .venv with: "sys.version_info[:2] == (3, 11)" -> "3.11"
SETUP_PYTHON = ".".join(re.search(r"sys\.version_info\[:2\] == \((\d+), (\d+)\)",
                                  (ROOT / "setup.sh").read_text()).groups())


def test_every_rule_uses_an_existing_env_file():
    used = {line.split('"')[1] for smk in (ROOT / "workflow/rules").glob("*.smk")
            for line in smk.read_text().splitlines() if "../../envs/" in line}
    assert used
    # the tasks' declared rules name their environment: envs/<environment>.yaml
    declared = "../../envs/{DECLARATION.environment}.yaml"
    assert declared in used
    environments = {declaration.environment for task in BUILTIN_TASKS
                    for declaration in (*load_task(task).DATA_FILES, *load_task(task).READINGS,
                                        *load_task(task).FIGURES)}
    assert environments
    used = (used - {declared}) | {f"../../envs/{name}.yaml" for name in environments}
    for path in used:
        assert (ROOT / "workflow/rules" / path).resolve().is_file(), path


@pytest.mark.parametrize("env_file", ENV_FILES, ids=lambda p: p.name)
def test_env_is_pinned_and_matches_the_lock(env_file):
    env = yaml.safe_load(env_file.read_text())
    assert env["channels"] == ["conda-forge", "nodefaults"]
    conda_specs = [d for d in env["dependencies"] if isinstance(d, str)]
    assert f"python ={SETUP_PYTHON}" in conda_specs, f"{env_file.name}: not setup.sh's Python"
    pip_specs = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    for spec in conda_specs:
        # a conda match spec "name =version" (exact version, channel default), as conda parses it
        assert CONDA_SPEC.fullmatch(spec), f"{env_file.name}: {spec!r} is not 'name =version'"
        name, _, version = spec.partition(" =")
        assert version, f"{env_file.name}: conda spec {spec!r} is not pinned"
    assert pip_specs
    for spec in pip_specs:
        assert PIP_SPEC.fullmatch(spec), f"{env_file.name}: {spec!r} is not 'name==version'"
        name, _, version = spec.partition("==")
        assert version, f"{env_file.name}: pip spec {spec!r} is not pinned with =="
        key = name.lower().replace("_", "-").split("[")[0]
        assert LOCK.get(key) == version, f"{env_file.name}: {spec} but requirements.lock has " \
                                         f"{key}=={LOCK.get(key)}"
