"""Mutation testing of the core modules with mutmut, each module against its own unit tests.

Outside CI (minutes per module on 2 cores). From the root of a clone:

    .venv/bin/python tests/mutation/run.py                  # every module, fresh
    .venv/bin/python tests/mutation/run.py kernel sgld      # some modules, fresh
    .venv/bin/python tests/mutation/run.py kernel --only 'losskernel.method.kernel.x_gram*'

A module's run happens in ``.mutation/<module>/`` (a copy of ``src/``, ``tests/`` and
``pyproject.toml`` with a ``[tool.mutmut]`` section naming the module and its test file), kept
afterwards so that ``mutmut show <mutant>`` and ``mutmut browse`` work there. ``--only`` re-runs
the named mutants in the kept copy after copying the current tests in: the way to check a new
test against its survivor. A fresh run (the default) is what the numbers in ``results.md`` come
from.

A surviving mutant is *equivalent* when no test can tell it from the original: it is listed in
``equivalent/<module>.tsv`` with the line it changes to and the reason. A listing whose mutant
no longer makes that change (the source moved on) is reported stale and counts as survived.

A fresh run writes ``tests/mutation/runs/<module>.tsv`` (its time, every mutant, its status
and, unless killed, the line it changes to); every run rewrites ``tests/mutation/results.md``
from all modules' files (the table, the survivors, the equivalents with their reasons).
Kill rate = (killed + timeout) / (mutants - equivalent).
"""

from __future__ import annotations

import argparse
import csv
import json
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

MUTMUT = "mutmut==3.8.1"
ROOT = Path(__file__).resolve().parents[2]
HERE = ROOT / "tests" / "mutation"
WORK = ROOT / ".mutation"

# module name -> (source file under src/losskernel, its own unit tests, space-separated)
MODULES = {
    "kernel": ("method/kernel.py",
               "tests/unit/test_kernel.py tests/unit/test_kernel_properties.py"),
    "sgld": ("method/sgld.py", "tests/unit/test_sgld.py"),
    "hierarchy": ("readings/hierarchy.py", "tests/unit/test_hierarchy.py"),
    "separation": ("readings/separation.py", "tests/unit/test_separation.py"),
    "mislabels": ("readings/mislabels.py", "tests/unit/test_mislabels.py"),
}
DETECTED = {"killed", "timeout"}


@dataclass
class Outcome:
    module: str
    statuses: dict[str, str]  # mutant -> mutmut's status, or "equivalent"
    stale: list[str]  # equivalence listings whose mutant no longer makes the listed change
    seconds: float
    changes: dict[str, str]  # mutant not killed -> the line it changes to

    def count(self, *statuses: str) -> int:
        return sum(status in statuses for status in self.statuses.values())

    @property
    def survivors(self) -> list[str]:
        return [name for name, status in self.statuses.items()
                if status not in DETECTED and status != "equivalent"]

    @property
    def kill_rate(self) -> float:
        candidates = len(self.statuses) - self.count("equivalent")
        return self.count(*DETECTED) / candidates if candidates else 1.0


def mutmut(work: Path, *args: str) -> str:
    command = [str(ROOT / ".venv" / "bin" / "mutmut"), *args]
    done = subprocess.run(command, cwd=work, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed in {work}:\n{done.stdout}\n{done.stderr}")
    return done.stdout


def prepare(module: str, fresh: bool) -> Path:
    """The module's working copy, with the current tests (and sources, when fresh)."""
    source, tests = MODULES[module]
    work = WORK / module
    if fresh:
        shutil.rmtree(work, ignore_errors=True)
        shutil.copytree(ROOT / "src", work / "src", ignore=shutil.ignore_patterns("*.egg-info"))
    elif not (work / "mutants").is_dir():
        raise SystemExit(f"--only needs a kept run of {module}; run it fresh first")
    shutil.rmtree(work / "tests", ignore_errors=True)
    shutil.copytree(ROOT / "tests", work / "tests",
                    ignore=shutil.ignore_patterns("__pycache__", "mutation"))
    settings = (ROOT / "pyproject.toml").read_text() + (
        "\n[tool.mutmut]\n"
        'source_paths = ["src/losskernel"]\n'
        f'only_mutate = ["src/losskernel/{source}"]\n'
        f"pytest_add_cli_args_test_selection = {json.dumps(tests.split())}\n"
    )
    (work / "pyproject.toml").write_text(settings)
    return work


def equivalents(module: str) -> dict[str, tuple[str, str]]:
    """mutant -> (the line it changes to, why no test can tell it from the original)."""
    with open(HERE / "equivalent" / f"{module}.tsv", newline="") as file:
        rows = csv.DictReader((line for line in file if not line.startswith("#")),
                              delimiter="\t")
        return {row["mutant"]: (row["change"], row["reason"]) for row in rows}


def added_line(diff: str) -> str:
    return next((line[1:].strip() for line in diff.splitlines()
                 if line.startswith("+") and not line.startswith("+++")), "")


def run(module: str, only: list[str], children: int) -> Outcome:
    work = prepare(module, fresh=not only)
    start = time.perf_counter()
    mutmut(work, "run", "--max-children", str(children), *only)
    seconds = time.perf_counter() - start
    statuses = {}
    for line in mutmut(work, "results", "--all", "true").splitlines():
        name, _, status = line.strip().rpartition(": ")
        if name:
            statuses[name] = status
    changes = {name: added_line(mutmut(work, "show", name))
               for name, status in statuses.items() if status not in DETECTED}
    stale = []
    for name, (change, _) in equivalents(module).items():
        if name in changes:
            if changes[name] == change:
                statuses[name] = "equivalent"
            else:
                stale.append(name)
    return Outcome(module, statuses, stale, seconds, changes)


def write(outcome: Outcome) -> None:
    """``runs/<module>.tsv``: the run time, then every mutant, its status and its change."""
    with open(HERE / "runs" / f"{outcome.module}.tsv", "w") as file:
        file.write(f"# seconds: {outcome.seconds:.0f}\n# stale: {' '.join(outcome.stale)}\n")
        file.write("mutant\tstatus\tchange\n")
        for name, status in outcome.statuses.items():
            file.write(f"{name}\t{status}\t{outcome.changes.get(name, '')}\n")


def summarize() -> None:
    """``results.md`` from every module's ``runs/<module>.tsv``."""
    lines = [
        "# Mutation testing: results",
        "",
        f"Written by `tests/mutation/run.py` with {MUTMUT}, each module against its own unit",
        "tests; kill rate = (killed + timeout) / (mutants - equivalent). Times are this",
        "machine's (2 cores, `--max-children 2`).",
        "",
        "| module | tests | mutants | killed | timeout | survived | equiv. | kill rate | time |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    details = []
    for module, (source, tests) in MODULES.items():
        path = HERE / "runs" / f"{module}.tsv"
        if not path.exists():
            continue
        with open(path) as file:
            seconds = float(file.readline().split(":")[1])
            stale = file.readline().split(":")[1].split()
            rows = list(csv.DictReader(file, delimiter="\t"))
        outcome = Outcome(module, {row["mutant"]: row["status"] for row in rows}, stale,
                          seconds, {row["mutant"]: row["change"] for row in rows})
        survivors = outcome.survivors
        lines.append(f"| `{source}` | `{tests}` | {len(rows)} | {outcome.count('killed')} "
                     f"| {outcome.count('timeout')} | {len(survivors)} "
                     f"| {outcome.count('equivalent')} | {outcome.kill_rate:.1%} "
                     f"| {seconds / 60:.1f} min |")
        details += ["", f"## {module}", ""]
        details.append(f"Survivors ({len(survivors)}):" if survivors else "No survivors.")
        details += [f"- `{name}` ({outcome.statuses[name]}): `{outcome.changes[name]}`"
                    for name in survivors]
        listed = equivalents(module)
        equivalent = [name for name, status in outcome.statuses.items()
                      if status == "equivalent"]
        if equivalent:
            details += ["", f"Equivalent ({len(equivalent)}):", ""]
            details += [f"- `{name}`: `{listed[name][0]}`: {listed[name][1]}"
                        for name in equivalent]
        if stale:
            details += ["", "Stale equivalence listings (counted as survived):", ""]
            details += [f"- `{name}`" for name in stale]
    (HERE / "results.md").write_text("\n".join(lines + details) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("modules", nargs="*", metavar="module",
                        help=f"some of {', '.join(MODULES)} (default: all)")
    parser.add_argument("--only", nargs="+", default=[], metavar="MUTANT",
                        help="re-run these mutants (names or globs) in the kept copy")
    parser.add_argument("--max-children", type=int, default=2)
    parser.add_argument("--summarize", action="store_true",
                        help="only rewrite results.md from the modules' results files")
    args = parser.parse_args()
    unknown = sorted(set(args.modules) - set(MODULES))
    if unknown:
        parser.error(f"unknown module(s) {', '.join(unknown)}; choose from {', '.join(MODULES)}")
    args.modules = args.modules or list(MODULES)
    if args.only and len(args.modules) != 1:
        parser.error("--only takes exactly one module")
    if not (ROOT / ".venv" / "bin" / "mutmut").exists():
        subprocess.run([str(ROOT / ".venv" / "bin" / "python"), "-m", "pip", "install",
                        "--quiet", MUTMUT], check=True)
    (HERE / "runs").mkdir(exist_ok=True)
    if args.summarize:
        return summarize()
    for module in args.modules:
        outcome = run(module, args.only, args.max_children)
        print(f"{module}: {len(outcome.statuses)} mutants, kill rate {outcome.kill_rate:.1%}, "
              f"{outcome.seconds:.0f} s", flush=True)
        if not args.only:
            write(outcome)
    summarize()


if __name__ == "__main__":
    sys.exit(main())
