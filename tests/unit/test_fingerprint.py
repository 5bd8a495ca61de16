"""Code fingerprints (losskernel.fingerprint): a job depends on the code it reaches, and on no
comment, docstring or layout; on toy packages written here, and on the workflow's scripts."""

from __future__ import annotations

import ast
import functools
import textwrap
from pathlib import Path

import pytest

from losskernel import fingerprint
from losskernel.fingerprint import Reach, job_code

ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = sorted((ROOT / "workflow/scripts").glob("*.py"))
BUILTIN_TASKS = ("losskernel.tasks.modarith", "losskernel.tasks.digits",
                 "losskernel.tasks.fashion", "losskernel.tasks.imagenet")

LIB = '''\
"""A library module."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from toypkg import annotated

SCALE = 2


def helper(x: annotated.Kind) -> int:
    """Twice x."""
    return SCALE * x  # the scale


def unused(x):
    return x - 1
'''

STEPS = '''\
from __future__ import annotations

from toypkg.lib import helper


def step_a(x):
    """Calls the helper."""
    return helper(x)


def step_b(x):
    from toypkg import other

    return other.value(x)
'''

OTHER = "def value(x):\n    return x + 1\n"
ANNOTATED = "class Kind:\n    pass\n"


@pytest.fixture
def package(tmp_path, monkeypatch) -> Path:
    """A toy package ``toypkg`` on sys.path, and scripts ``a.py`` and ``b.py`` calling its
    steps; the fingerprint's caches are cleared around the test (paths differ per test)."""
    root = tmp_path / "code"
    files = {"toypkg/__init__.py": "", "toypkg/lib.py": LIB, "toypkg/steps.py": STEPS,
             "toypkg/other.py": OTHER, "toypkg/annotated.py": ANNOTATED,
             "a.py": "from toypkg.steps import step_a\n\nstep_a(1)\n",
             "b.py": "from toypkg.steps import step_b\n\nstep_b(1)\n"}
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    monkeypatch.syspath_prepend(str(root))
    fingerprint._find.cache_clear()
    fingerprint._job_code.cache_clear()
    yield root
    fingerprint._find.cache_clear()
    fingerprint._job_code.cache_clear()


def code(root: Path, script: str, **kwargs) -> dict[str, str]:
    fingerprint._job_code.cache_clear()
    return job_code(root / script, script, followed=("losskernel", "toypkg"), **kwargs)


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, old
    path.write_text(text.replace(old, new))


def test_a_script_reaches_the_functions_it_calls_and_what_they_mention(package):
    a, b = code(package, "a.py"), code(package, "b.py")
    assert list(a) == ["a.py", "toypkg.lib", "toypkg.steps"]
    # step_b imports a module inside the function: all of it counts, the library does not
    assert list(b) == ["b.py", "toypkg.other", "toypkg.steps"]


def test_comments_docstrings_and_layout_change_no_digest(package):
    before = code(package, "a.py")
    edit(package / "toypkg/lib.py", "    return SCALE * x  # the scale",
         "    # a new comment\n    return (SCALE\n            * x)")
    edit(package / "toypkg/lib.py", '"""Twice x."""', '"""Two times x, reworded."""')
    edit(package / "toypkg/lib.py", '"""A library module."""', '"""Reworded."""')
    edit(package / "toypkg/steps.py", '"""Calls the helper."""', "# no docstring now")
    assert code(package, "a.py") == before


def test_a_real_change_changes_the_digest_of_its_module_only(package):
    before = code(package, "a.py")
    edit(package / "toypkg/lib.py", "SCALE = 2", "SCALE = 3")
    after = code(package, "a.py")
    assert after["toypkg.lib"] != before["toypkg.lib"]
    assert {k: v for k, v in after.items() if k != "toypkg.lib"} == {
        k: v for k, v in before.items() if k != "toypkg.lib"}


def test_a_step_does_not_depend_on_its_neighbours_or_on_unused_functions(package):
    a, b = code(package, "a.py"), code(package, "b.py")
    edit(package / "toypkg/lib.py", "return x - 1", "return x - 2")  # unused by either
    edit(package / "toypkg/other.py", "x + 1", "x + 2")  # step_b's only
    assert code(package, "a.py") == a
    assert code(package, "b.py")["toypkg.other"] != b["toypkg.other"]
    edit(package / "toypkg/steps.py", "return other.value(x)", "return other.value(x) * 1")
    assert code(package, "a.py") == a


def test_a_module_read_as_module_dot_name_reaches_that_name_only(package):
    (package / "toypkg/user.py").write_text(
        "from toypkg import other\n\n\ndef use(x):\n    return other.value(x)\n")
    (package / "u.py").write_text("from toypkg.user import use\n\nuse(1)\n")
    before = code(package, "u.py")
    edit(package / "toypkg/other.py", "def value(",
         "def unrelated(x):\n    return x\n\n\ndef value(")
    assert code(package, "u.py") == before
    edit(package / "toypkg/other.py", "x + 1", "x + 2")
    assert code(package, "u.py")["toypkg.other"] != before["toypkg.other"]
    # passed around as a module, all of it counts: `unrelated` too
    edit(package / "toypkg/user.py", "return other.value(x)", "return getattr(other, 'value')(x)")
    whole = code(package, "u.py")
    edit(package / "toypkg/other.py", "return x\n", "return -x\n")
    assert code(package, "u.py")["toypkg.other"] != whole["toypkg.other"]


def test_what_a_package_runs_on_import_counts_for_its_modules(package):
    assert "toypkg" not in code(package, "a.py")  # an empty __init__.py: nothing runs
    (package / "toypkg/__init__.py").write_text("import os\n\nos.environ['MODE'] = 'fast'\n")
    before = code(package, "a.py")
    assert "toypkg" in before
    edit(package / "toypkg/__init__.py", "'fast'", "'exact'")
    assert code(package, "a.py")["toypkg"] != before["toypkg"]


def test_type_checking_imports_and_lazy_annotations_are_not_code(package):
    assert "toypkg.annotated" not in code(package, "a.py")
    # without `from __future__ import annotations` an annotation is evaluated: it counts
    edit(package / "toypkg/lib.py", "from __future__ import annotations\n", "")
    edit(package / "toypkg/lib.py", "if TYPE_CHECKING:\n    from toypkg import annotated",
         "from toypkg import annotated")
    assert "toypkg.annotated" in code(package, "a.py")


TASK_STEP = '''\
from losskernel.tasks import load_task


def step(name):
    task = load_task(name)
    return task.make_data(task.SETTINGS)
'''

TASK = '''\
from toypkg.base import *

SETTINGS = {"n": 3}
READINGS = (compute_reading,)


def make_data(settings):
    return shared(settings["n"])


def build_model(settings):
    return 1


def compute_reading(x):
    return x
'''

BASE = "def shared(n):\n    return list(range(n))\n\n\ndef unused_default():\n    return 0\n"


def test_the_task_hooks_a_job_reads_count_once_it_loads_its_task(package):
    (package / "toypkg/taskstep.py").write_text(TASK_STEP)
    (package / "toypkg/mytask.py").write_text(TASK)
    (package / "toypkg/base.py").write_text(BASE)
    (package / "t.py").write_text("from toypkg.taskstep import step\n\nstep('toypkg.mytask')\n")
    task = "toypkg.mytask"
    before = code(package, "t.py", task=task)
    assert {"toypkg.mytask", "toypkg.base"} <= set(before)
    # hooks it never reads (build_model), the declarations (READINGS), unused defaults: no
    edit(package / "toypkg/mytask.py", "return 1", "return 2")
    edit(package / "toypkg/mytask.py", "return x\n", "return -x\n")
    edit(package / "toypkg/base.py", "return 0", "return 1")
    assert code(package, "t.py", task=task) == before
    # a hook it calls, and what that reaches through the star import: yes
    edit(package / "toypkg/base.py", "range(n)", "range(n + 1)")
    assert code(package, "t.py", task=task)["toypkg.base"] != before["toypkg.base"]
    # a job that never loads its task does not depend on it
    assert "toypkg.mytask" not in code(package, "a.py", task=task)


def test_a_declared_rule_follows_its_declaration(package):
    (package / "toypkg/mytask.py").write_text(TASK)
    (package / "toypkg/base.py").write_text(BASE)
    declared = code(package, "b.py", declared="toypkg.mytask:compute_reading")
    assert "toypkg.mytask" in declared
    edit(package / "toypkg/mytask.py", "return x\n", "return -x\n")
    changed = code(package, "b.py", declared="toypkg.mytask:compute_reading")
    assert changed["toypkg.mytask"] != declared["toypkg.mytask"]
    # a partial's function and the functions it is given are followed too
    assert set(fingerprint.declared_roots(functools.partial(sorted, key=len))) == {
        ("builtins", "sorted"), ("builtins", "len")}


def test_the_runner_is_not_a_jobs_code():
    scripts = {path.stem: job_code(path, path.name) for path in SCRIPTS}
    assert all("losskernel.pipeline" not in found and "losskernel.job" not in found
               for found in scripts.values())


@pytest.mark.parametrize("task", BUILTIN_TASKS)
def test_every_name_the_workflow_reaches_is_found(task):
    """The reach is complete for this package: every name imported by name resolves to a
    definition (an unresolved one would count its whole module, silently coarser)."""
    for script in SCRIPTS:
        reach = Reach({"losskernel"})
        reach.sources[fingerprint.SCRIPT] = fingerprint._parse(
            script.read_text(), fingerprint.SCRIPT, False)
        reach.module(fingerprint.SCRIPT)
        reach.task_hooks(task)
        assert reach.unresolved == set(), script.name


def test_training_never_depends_on_the_sampler_and_sampling_does():
    task = "losskernel.tasks.modarith"
    training = job_code(ROOT / "workflow/scripts/train_model.py", "train_model.py", task)
    sampling = job_code(ROOT / "workflow/scripts/sample_chain.py", "sample_chain.py", task)
    assert "losskernel.method.sgld" not in training
    assert {"losskernel.method.sgld", "losskernel.tasks.modarith"} <= set(sampling)
    assert "losskernel.tasks.modarith" in training


def test_source_text_of_a_snippet_is_fingerprinted_like_a_script(package):
    snippet = "from toypkg.steps import step_a; step_a(1)"
    assert list(fingerprint.source_code(snippet, "snippet", followed=("toypkg",))) == [
        "snippet", "toypkg.lib", "toypkg.steps"]


def test_a_script_is_part_of_its_own_code(package):
    before = code(package, "a.py")
    (package / "a.py").write_text(textwrap.dedent("""\
        # a comment
        from toypkg.steps import step_a

        step_a(2)
        """))
    assert code(package, "a.py")["a.py"] != before["a.py"]


def test_no_code_of_the_package_is_found_by_a_string_but_the_known_three():
    """What a static reach cannot see: imports by name at run time. The three there are (the
    task, a declaration's function, losskernel.method's lazy names) are followed otherwise."""
    calls = {}
    for path in sorted((ROOT / "src/losskernel").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                    and node.func.attr == "import_module"):
                where = path.relative_to(ROOT / "src").as_posix()
                calls[where] = calls.get(where, 0) + 1
    assert calls == {"losskernel/tasks/__init__.py": 1, "losskernel/tasks/protocol.py": 1,
                     "losskernel/method/__init__.py": 1}
