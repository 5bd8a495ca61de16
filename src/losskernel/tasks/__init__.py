"""The tasks of the experiments: built-in ones and any module a config names by import path.

======================  ================================  =========================================
config ``task``         module                            what it is
======================  ================================  =========================================
``modular_arithmetic``  :mod:`losskernel.tasks.modarith`  two tasks mod p on one network (§3)
``digits``              :mod:`losskernel.tasks.digits`    8×8 digits with flipped labels (appendix)
``imagenet``            :mod:`losskernel.tasks.imagenet`  Inception-v1 on ImageNet (Figure 1)
``fashion``             :mod:`losskernel.tasks.fashion`   Fashion-MNIST against WordNet (Figure 1)
``pkg.module``          your own                          any module implementing the contract
======================  ================================  =========================================

The contract is :class:`losskernel.tasks.protocol.Task`. Task modules are torch-free at import:
torch is imported where models are built, so analysis steps never load it.
"""

from __future__ import annotations

import functools
import importlib

from losskernel.tasks.protocol import TASK_MEMBERS, Task

BUILTIN_TASKS: dict[str, str] = {
    "modular_arithmetic": "losskernel.tasks.modarith",
    "digits": "losskernel.tasks.digits",
    "imagenet": "losskernel.tasks.imagenet",
    "fashion": "losskernel.tasks.fashion",
}


@functools.cache
def load_task(name: str) -> Task:
    """The task module of a config's ``task``: a built-in name, else an import path.

    Raises ``ValueError`` naming the task and the fix when the module cannot be imported or
    lacks a member of the contract.
    """
    module_name = BUILTIN_TASKS.get(name, name)
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        raise ValueError(f"unknown task {name!r}: not a built-in task "
                         f"({', '.join(BUILTIN_TASKS)}) and {module_name} cannot be imported "
                         f"({error}); install your task's package or put it on PYTHONPATH"
                         ) from None
    missing = [member for member in TASK_MEMBERS if not hasattr(module, member)]
    if missing:
        raise ValueError(f"task {name!r}: {module_name} lacks {', '.join(missing)} of the task "
                         f"contract (losskernel.tasks.protocol.Task); import the hooks you do not "
                         f"need from losskernel.tasks.defaults")
    return module  # type: ignore[return-value]  # a module checked to have every member
