"""A job of the workflow: a rule at concrete wildcards, with its files and arguments.

Snakemake makes the jobs; a rule's script hands its job over as the ``snakemake`` object
(:func:`script_job`). A running job imports neither the plan nor the config schema.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

Files = dict[str, str | list[str]]
"""A job's input or output files by name: a path, or a list of paths."""


@dataclass(frozen=True)
class Job:
    """One job: ``rule`` at ``wildcards``; ``step`` names the function of
    ``losskernel.pipeline`` that runs it with its files and ``arguments`` (the rule's params);
    ``code`` is the fingerprint of the code it runs (:mod:`losskernel.fingerprint`)."""

    rule: str
    step: str
    wildcards: Mapping[str, str]
    inputs: Files
    outputs: dict[str, str]
    arguments: dict[str, Any]
    code: Mapping[str, str] = field(default_factory=dict)


def paths(files: Files) -> list[str]:
    """Every path of a job's files, in order."""
    return [str(path) for named in files.values()
            for path in (named if isinstance(named, list | tuple) else [named])]


def script_job(snakemake: Any, step: str) -> Job:
    """The job of a rule's script from its ``snakemake`` object (its ``rule``, ``wildcards``,
    ``input``, ``output`` and ``params``). The step's arguments are the param ``arguments``
    (:func:`losskernel.params.job_params`) and every other param by its own name, but
    ``code``, the fingerprint its record keeps."""
    params = dict(snakemake.params.items())
    code = params.pop("code", {})
    arguments = {**params.pop("arguments", {}), **params}
    return Job(rule=snakemake.rule, step=step, wildcards=dict(snakemake.wildcards.items()),
               inputs=_named(snakemake.input), outputs=_named(snakemake.output),
               arguments=arguments, code=dict(code))


def _named(files: Any) -> dict:
    """Snakemake's named files as a dict: name -> path, or a list of paths."""
    return {name: value if isinstance(value, str) else list(value)
            for name, value in files.items()}
