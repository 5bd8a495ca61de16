"""Code fingerprints: which source a job executes, and a digest of it that ignores comments,
docstrings and formatting.

A rule's ``params`` carry its jobs' fingerprint (``code``), so Snakemake's ``params`` rerun
trigger reruns a job, and what depends on it, exactly when the code it runs changed. The
fingerprint of a job is a mapping ``{module: digest}`` over the code it reaches from its rule's
script, found statically (nothing is imported):

- A name imported by name (``from m import f``) reaches the top-level definition of ``f`` in
  ``m`` and, transitively, every top-level name of ``m`` that definition mentions and every
  import it makes (imports inside functions included, ``if TYPE_CHECKING:`` blocks and, under
  ``from __future__ import annotations``, annotations left out). A module bound by a
  top-level import (``import m``, ``from p import m``) and read as ``m.f`` reaches ``f``; a
  module used otherwise (passed around, imported inside a function, ``from m import *``)
  reaches all of it. So a step depends on the functions it calls, not on its neighbours in the
  same file.
- A job that loads its task (``losskernel.tasks.load_task``) reaches the task module's
  top-level names that its code reads as attributes (``task.make_data``): the hooks it may
  call, through the task module's star imports too. A declared rule (a task's
  :class:`~losskernel.tasks.protocol.DataFile`, ``Reading`` or ``FigureSet``) reaches its
  declaration's function instead of the task's tables of declarations.
- Only modules of the followed packages count (``losskernel``, and a user's task package);
  third-party code is the rule's pinned environment's.
- The runner (:data:`RUNNER`: ``losskernel.pipeline.run_script`` logs a job, sizes its
  thread pools and stamps its provenance record) is not followed: it decides how a job is run
  and recorded, not what it computes, and following it would rerun every job for a change
  of the record's format.

What a static reach cannot see is code found by a string at run time
(``importlib.import_module``, ``getattr`` with a computed name). In this package that is the
task (followed through its attributes, above), a declaration's ``"module:function"`` (followed
through the declaration) and the lazy names of ``losskernel.method`` (which no step uses);
``tests/unit/test_fingerprint.py`` fails on any other.

A module's digest hashes the reached statements' syntax trees (``ast.dump``, no line numbers)
with every docstring removed, so an edit of a comment, a docstring or the layout changes no
digest.
"""

from __future__ import annotations

import ast
import functools
import hashlib
import importlib.machinery
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

Fingerprint = dict[str, str]
"""A job's code: reached module (or script path) -> digest of the reached source."""

RUNNER = ("losskernel.pipeline", "run_script")
"""The runner every rule's script calls, not part of a job's code (see the module docstring)."""
TASK_LOADER = ("losskernel.tasks", "load_task")
"""Reaching it makes the task's hooks part of a job's code."""
DECLARATION_TABLES = frozenset({"DATA_FILES", "READINGS", "FIGURES"})
"""A task's tables of declarations: a declared rule follows its own declaration instead."""
DIGEST_LENGTH = 16
SCRIPT = "__script__"
"""The rule's script, as a module of the reach."""


@dataclass
class ModuleSource:
    """A module's top-level statements by the names they bind, and the rest (effects)."""

    name: str
    is_package: bool
    definitions: dict[str, list[ast.stmt]] = field(default_factory=dict)
    imports: dict[str, tuple[str, str | None]] = field(default_factory=dict)
    star_imports: list[str] = field(default_factory=list)
    modules: dict[str, str] = field(default_factory=dict)
    """Names bound to a module (``import m``, ``from p import m``): ``m.f`` reaches ``f``."""
    effects: list[ast.stmt] = field(default_factory=list)
    lazy_annotations: bool = False


def job_code(script: str | Path, script_key: str, task: str | None = None,
             declared: Any = None, followed: Iterable[str] = ("losskernel",)) -> Fingerprint:
    """The fingerprint of a job: its rule's ``script`` (a file, recorded as ``script_key``),
    the code it reaches, the hooks of its ``task`` module (an import path) when it loads it,
    and the function of the task's declaration ``declared`` (a callable, a
    ``functools.partial`` or a ``"module:function"`` string) when it is a declared rule."""
    return source_code(Path(script).read_text(), script_key, task, declared, followed)


def source_code(source: str, script_key: str, task: str | None = None, declared: Any = None,
                followed: Iterable[str] = ("losskernel",)) -> Fingerprint:
    """:func:`job_code` of a script given as its ``source`` text (a ``python -c`` snippet)."""
    roots = tuple(sorted(declared_roots(declared))) if declared is not None else ()
    packages = {*followed, *(name.split(".")[0] for name in [task or "", *(m for m, _ in roots)]
                             if name)}
    return dict(_job_code(source, script_key, task, roots, frozenset(packages)))


@functools.cache  # once per process: Snakemake asks for it once per job of the same rule
def _job_code(source: str, script_key: str, task: str | None,
              roots: tuple[tuple[str, str], ...], packages: frozenset[str]
              ) -> tuple[tuple[str, str], ...]:
    reach = Reach(packages)
    reach.sources[SCRIPT] = _parse(source, SCRIPT, is_package=False)
    reach.module(SCRIPT)
    for module, name in roots:
        reach.name(module, name)
    if task is not None:
        reach.task_hooks(task)
    digests = reach.digests()
    return ((script_key, digests.pop(SCRIPT)), *sorted(digests.items()))


def digest(text: str) -> str:
    """The digest a fingerprint gives a piece of code: the first hex digits of its sha256."""
    return hashlib.sha256(text.encode()).hexdigest()[:DIGEST_LENGTH]


def declared_roots(declared: Any) -> Iterator[tuple[str, str]]:
    """The (module, top-level name) of a declaration's function, and of any function a
    ``functools.partial`` of it is given."""
    if isinstance(declared, str):
        module, _, name = declared.partition(":")
        yield module, name
    elif isinstance(declared, functools.partial):
        for part in (declared.func, *declared.args, *declared.keywords.values()):
            if callable(part):
                yield from declared_roots(part)
    elif callable(declared) and hasattr(declared, "__module__"):
        yield declared.__module__, declared.__qualname__.split(".")[0]


class Reach:
    """The code reached from roots: per module, the top-level names reached (``"*"``: the
    whole module) and every attribute name read on the way."""

    def __init__(self, packages: Iterable[str]) -> None:
        self.packages = frozenset(packages)
        self.reached: dict[str, set[str]] = {}
        self.sources: dict[str, ModuleSource | None] = {}
        self.attributes: set[str] = set()
        self.unresolved: set[tuple[str, str]] = set()

    def task_hooks(self, task: str) -> None:
        """The task module's top-level names read as attributes, once the task is loaded;
        repeated until the hooks reached read no new attribute."""
        seen: set[str] = set()
        while TASK_LOADER[1] in self.reached.get(TASK_LOADER[0], set()):
            hooks = {name for name in self.attributes - seen - DECLARATION_TABLES
                     if self._binds(task, name)}
            if not hooks:
                return
            seen |= hooks
            for name in sorted(hooks):
                self.name(task, name)

    def name(self, module: str, name: str) -> None:
        """Reach the top-level ``name`` of ``module`` (or its submodule ``name``)."""
        source = self._source(module)
        if source is None or name in self.reached.get(module, set()) or (module, name) == RUNNER:
            return
        if name in source.definitions:
            self._mark(module, name)
            self.statements(source, source.definitions[name])
        elif name in source.imports:
            self._mark(module, name)
            self._follow(*source.imports[name])
        elif source.is_package and _find(f"{module}.{name}") is not None:
            self.module(f"{module}.{name}")
        elif star := [star for star in source.star_imports if self._binds(star, name)]:
            self._mark(module, name)
            self.name(star[0], name)
        else:
            self.unresolved.add((module, name))
            self.module(module)

    def module(self, module: str) -> None:
        """Reach all of ``module``."""
        source = self._source(module)
        if source is None or "*" in self.reached.get(module, set()):
            return
        self._mark(module, "*")
        for name in [*source.definitions, *source.imports]:
            self.name(module, name)
        for star in source.star_imports:
            self.module(star)

    def statements(self, source: ModuleSource, statements: list[ast.stmt]) -> None:
        """Reach what ``statements`` of ``source`` mention: its own top-level names, the
        imports among them; and note every attribute name read."""
        module_names: set[int] = set()  # names read as `module.attribute`, reached as such
        for node in _walk(statements, source.lazy_annotations):
            if isinstance(node, ast.Attribute):
                self.attributes.add(node.attr)
                if isinstance(node.value, ast.Name) and (
                        module := source.modules.get(node.value.id)):
                    module_names.add(id(node.value))
                    self.name(module, node.attr)
            elif isinstance(node, ast.Name) and id(node) not in module_names and self._binds(
                    source.name, node.id):
                self.name(source.name, node.id)
            elif isinstance(node, ast.Import | ast.ImportFrom):
                for module, name in _imported(node, source.name, source.is_package).values():
                    self._follow(module, name)

    def digests(self) -> dict[str, str]:
        """Each reached module's digest: its reached statements, import bindings and effects."""
        digests = {}
        for module, names in self.reached.items():
            source = self.sources[module]
            names = set(source.definitions) | set(source.imports) if "*" in names else names
            parts = [ast.dump(statement) for name in sorted(names)
                     for statement in source.definitions.get(name, [])]
            parts += [f"{name} = {source.imports[name]}" for name in sorted(names)
                      if name in source.imports]
            parts += [ast.dump(statement) for statement in source.effects]
            digests[module] = digest("\n".join(parts))
        return digests

    def _follow(self, module: str, name: str | None) -> None:
        if name is None:
            self.module(module)
        else:
            self.name(module, name)

    def _mark(self, module: str, name: str) -> None:
        first = module not in self.reached
        self.reached.setdefault(module, set()).add(name)
        if first:  # a module's effects (top-level statements that bind nothing) run on import,
            # and so do its packages'
            self.statements(self.sources[module], self.sources[module].effects)
            parts = module.split(".")
            for depth in range(1, len(parts)):
                package = ".".join(parts[:depth])
                if (source := self._source(package)) is not None and source.effects:
                    self._mark(package, "")

    def _binds(self, module: str, name: str) -> bool:
        source = self._source(module)
        return source is not None and (
            name in source.definitions or name in source.imports
            or any(self._binds(star, name) for star in source.star_imports))

    def _source(self, module: str) -> ModuleSource | None:
        if module not in self.sources:
            path = _find(module) if module.split(".")[0] in self.packages else None
            self.sources[module] = None if path is None else _parse(  # type: ignore[assignment]
                path.read_text(), module, is_package=path.name == "__init__.py")
        return self.sources[module]


@functools.cache
def _find(module: str) -> Path | None:
    """The source file of ``module``, found on ``sys.path`` without importing anything."""
    spec, search = None, None
    parts = module.split(".")
    for depth in range(1, len(parts) + 1):
        spec = importlib.machinery.PathFinder.find_spec(".".join(parts[:depth]), search)
        if spec is None:
            return None
        search = spec.submodule_search_locations
    origin = getattr(spec, "origin", None)
    return Path(origin) if origin and origin.endswith(".py") else None


@functools.cache
def _parse(text: str, module: str, is_package: bool) -> ModuleSource:
    """A module's source by binding; docstrings and ``if TYPE_CHECKING:`` blocks left out."""
    tree = ast.parse(text)
    _strip_docstrings(tree)
    source = ModuleSource(module, is_package)
    for statement in tree.body:
        if _is_type_checking(statement):
            continue
        if isinstance(statement, ast.ImportFrom) and statement.module == "__future__":
            source.lazy_annotations |= any(a.name == "annotations" for a in statement.names)
        elif isinstance(statement, ast.Import | ast.ImportFrom):
            for bound, target in _imported(statement, module, is_package).items():
                if bound == "*":
                    source.star_imports.append(target[0])
                else:
                    source.imports[bound] = target
                if target[1] is None and not _dotted_import(statement, bound):
                    source.modules[bound] = target[0]
        elif isinstance(statement, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            source.definitions.setdefault(statement.name, []).append(statement)
        elif isinstance(statement, ast.Pass):  # what a docstring-only module is left with
            continue
        elif bound_names := _assigned(statement):
            for name in bound_names:
                source.definitions.setdefault(name, []).append(statement)
        else:
            source.effects.append(statement)
    return source


def _imported(node: ast.Import | ast.ImportFrom, module: str, is_package: bool
              ) -> dict[str, tuple[str, str | None]]:
    """What an import statement binds: name -> (module, name in it), or (module, None) for a
    module bound whole; ``"*"`` for a star import."""
    if isinstance(node, ast.Import):
        return {alias.asname or alias.name.split(".")[0]: (alias.name, None)
                for alias in node.names}
    base = node.module or ""
    if node.level:  # relative: from the module's own package up
        package = module.split(".") if is_package else module.split(".")[:-1]
        base = ".".join([*package[:len(package) - node.level + 1], *filter(None, [base])])
    bound = {}
    for alias in node.names:
        if alias.name == "*":
            bound["*"] = (base, None)
        elif _find(f"{base}.{alias.name}") is not None:
            bound[alias.asname or alias.name] = (f"{base}.{alias.name}", None)
        else:
            bound[alias.asname or alias.name] = (base, alias.name)
    return bound


def _dotted_import(statement: ast.Import | ast.ImportFrom, bound: str) -> bool:
    """Whether ``bound`` is the top package of ``import a.b``: ``a.b.f`` is then not ``a.f``."""
    return isinstance(statement, ast.Import) and any(
        alias.asname is None and "." in alias.name and alias.name.split(".")[0] == bound
        for alias in statement.names)


def _assigned(statement: ast.stmt) -> list[str]:
    """The names an assignment binds; none when it assigns to anything but names (an item or
    an attribute: an effect)."""
    targets = (statement.targets if isinstance(statement, ast.Assign)
               else [statement.target] if isinstance(statement, ast.AnnAssign) else [])
    names = []
    for target in targets:
        for node in ast.walk(target):
            if isinstance(node, ast.Name):
                names.append(node.id)
            elif not isinstance(node, ast.Tuple | ast.List | ast.Starred | ast.expr_context):
                return []
    return names


def _is_type_checking(statement: ast.stmt) -> bool:
    test = statement.test if isinstance(statement, ast.If) else None
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _strip_docstrings(tree: ast.AST) -> None:
    """Remove every string statement (docstrings, attribute docstrings): they do nothing."""
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(body, list) and body and isinstance(body[0], ast.stmt):
            kept = [statement for statement in body if not (
                isinstance(statement, ast.Expr) and isinstance(statement.value, ast.Constant)
                and isinstance(statement.value.value, str))]
            node.body = kept or [ast.Pass()]  # type: ignore[attr-defined]


def _walk(statements: list[ast.stmt], lazy_annotations: bool) -> Iterator[ast.AST]:
    """Every node of ``statements``; annotations left out when they are never evaluated, and
    ``if TYPE_CHECKING:`` blocks always."""
    stack: list[ast.AST] = list(reversed(statements))
    while stack:
        node = stack.pop()
        if isinstance(node, ast.If) and _is_type_checking(node):
            continue
        yield node
        for name, value in ast.iter_fields(node):
            if lazy_annotations and name in ("annotation", "returns"):
                continue
            children = value if isinstance(value, list) else [value]
            stack.extend(child for child in reversed(children) if isinstance(child, ast.AST))
