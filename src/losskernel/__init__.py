"""losskernel: the loss kernel (Adam, Furman, Hoogland, arXiv 2509.26537) and the pipeline that
regenerates its paper's figures.

==========================  ==================================================================
``losskernel.method``       the method: localized SGLD, per-sample loss traces, the kernel
``losskernel.readings``     what is read off kernels: pure functions, arrays in, tables out
``losskernel.plotting``     every figure
``losskernel.tasks``        the experiments' tasks and their contract (``tasks.protocol``)
``losskernel.plan``         what a config's experiments run (runs, readings, checks)
``losskernel.dag``          each rule's files and each job's arguments
``losskernel.pipeline``     one step per rule: load, call the method and readings, write
``losskernel.cli``          every rule as a command, and ``plan``, ``jobs``, ``provenance``
==========================  ==================================================================
"""
