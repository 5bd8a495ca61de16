# The tasks' own rules. Each data file, reading and figure set that a configured task
# declares (losskernel.tasks.protocol: DataFile, Reading, FigureSet) is a rule of its own,
# named by the declaration: a task added by import path brings its rules without an edit here.

from losskernel.tasks.protocol import FigureSet

for RULE, (TASK, DECLARATION) in dag.declared_rules(PLAN).items():

    rule:
        name:
            RULE
        input:
            unpack(inputs_of(RULE)),
        output:
            **(
                figures_of(
                    RULE,
                    category=DECLARATION.category,
                    captions={n: f.caption for n, f in DECLARATION.figures.items()},
                )
                if isinstance(DECLARATION, FigureSet)
                else outputs_of(RULE)
            ),
        log:
            f"results/logs/{RULE}/{dag.rules(PLAN)[RULE].log_name}.log",
        benchmark:
            f"results/benchmarks/{RULE}/{dag.rules(PLAN)[RULE].log_name}.tsv"
        wildcard_constraints:
            experiment=experiments_of(RULE),
        conda:
            f"../../envs/{DECLARATION.environment}.yaml"
        threads: 1
        params:
            **params_of(RULE),
        script:
            "../scripts/run_step.py"
