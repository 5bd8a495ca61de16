"""losskernel: the loss kernel (Adam, Furman, Hoogland, arXiv 2509.26537) and the pipeline that
regenerates its paper's figures.

==========================  ==================================================================
``losskernel.method``       the method: localized SGLD, per-sample loss traces, the kernel
``losskernel.readings``     what is read off kernels: pure functions, arrays in, tables out
``losskernel.plotting``     every figure
``losskernel.tasks``        the experiments' tasks and their contract (``tasks.protocol``)
``losskernel.plan``         what a config's experiments run (runs, readings, checks)
``losskernel.params``       what each job is told (its rule's params)
``losskernel.fingerprint``  the code each job runs, and its digest (its rule's param ``code``)
``losskernel.pipeline``     one step per rule: load, call the method and readings, write
``losskernel.cli``          ``validate-config``, ``plan``, ``calibrate``, ``provenance``
==========================  ==================================================================
"""
