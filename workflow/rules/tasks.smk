# The tasks' own rules. Each data file, reading and figure set that a configured task
# declares (losskernel.tasks.protocol: DataFile, Reading, FigureSet) is a rule of its own,
# named by the declaration, its files named by the declaration too: a task added by import
# path brings its rules without an edit here. A data file is written to its declared path; a
# reading reads its declared files of the seed's run directory (and of the experiment's) and
# writes <reading>.tsv and its tables there; a figure set reads its declared files at the
# figure seed, at every seed or of the experiment, and draws results/figures/<experiment>/.

from losskernel.tasks.protocol import DataFile, Reading

SEED_DIR = "results/{experiment}/seed{seed}"
EXPERIMENT_DIR = "results/{experiment}"

for RULE, (TASK, DECLARATION) in PLAN.declarations().items():
    if isinstance(DECLARATION, DataFile):

        rule:
            name:
                RULE
            input:
                **data_manifests(RULE),
            output:
                table=DECLARATION.path,
            log:
                f"results/logs/{RULE}/{DECLARATION.key}.log",
            benchmark:
                f"results/benchmarks/{RULE}/{DECLARATION.key}.tsv"
            conda:
                f"../../envs/{DECLARATION.environment}.yaml"
            threads: 1
            params:
                arguments=params_of(RULE),
                code=code_of("make_data_file", DECLARATION.make),
            script:
                "../scripts/make_data_file.py"

    elif isinstance(DECLARATION, Reading):

        rule:
            name:
                RULE
            input:
                **{name: f"{SEED_DIR}/{file}" for name, file in DECLARATION.inputs.items()},
                **{
                    name: f"{EXPERIMENT_DIR}/{file}"
                    for name, file in DECLARATION.experiment_inputs.items()
                },
            output:
                **{name: f"{SEED_DIR}/{file}" for name, file in DECLARATION.tables.items()},
                metrics=f"{SEED_DIR}/{DECLARATION.name}.tsv",
            log:
                f"results/logs/{RULE}/{{experiment}}/seed{{seed}}.log",
            benchmark:
                f"results/benchmarks/{RULE}/{{experiment}}/seed{{seed}}.tsv"
            wildcard_constraints:
                experiment=only(PLAN.offering(DECLARATION)),
            conda:
                f"../../envs/{DECLARATION.environment}.yaml"
            threads: 1
            params:
                arguments=params_of(RULE),
                code=code_of("score_reading", DECLARATION.compute),
            script:
                "../scripts/score_reading.py"

    else:

        rule:
            name:
                RULE
            input:
                unpack(figure_set_inputs(DECLARATION)),
            output:
                **{
                    output: report(
                        f"results/figures/{{experiment}}/{figure.name}.png",
                        caption=figure.caption or f"../report/{figure.name}.rst",
                        category=DECLARATION.category,
                        subcategory="{experiment}",
                    )
                    for output, figure in DECLARATION.figures.items()
                },
            log:
                f"results/logs/{RULE}/{{experiment}}.log",
            benchmark:
                f"results/benchmarks/{RULE}/{{experiment}}.tsv"
            wildcard_constraints:
                experiment=only(PLAN.offering(DECLARATION)),
            conda:
                f"../../envs/{DECLARATION.environment}.yaml"
            threads: 1
            params:
                arguments=params_of(RULE),
                code=code_of("plot_figures", DECLARATION.draw),
            script:
                "../scripts/plot_figures.py"
