# Train each experiment's model and keep log-spaced checkpoints for the developmental
# analyses, or take pretrained weights and the user's own checkpoints.


rule train_model:
    input:
        unpack(inputs_of("train_model")),
    output:
        **outputs_of("train_model"),
    log:
        "results/logs/train_model/{experiment}.log",
    benchmark:
        "results/benchmarks/train_model/{experiment}.tsv"
    wildcard_constraints:
        experiment=experiments_of("train_model"),
    conda:
        "../../envs/torch.yaml"
    threads: 1
    resources:
        gpu=uses_gpu("training"),
    params:
        **params_of("train_model"),
    script:
        "../scripts/run_step.py"


rule import_model:
    input:
        # the weights and checkpoint files are inputs: replacing one reruns what depends on it
        unpack(inputs_of("import_model")),
    output:
        **outputs_of("import_model"),
    log:
        "results/logs/import_model/{experiment}.log",
    benchmark:
        "results/benchmarks/import_model/{experiment}.tsv"
    wildcard_constraints:
        experiment=experiments_of("import_model"),
    conda:
        "../../envs/torch.yaml"
    threads: 1
    params:
        **params_of("import_model"),
    script:
        "../scripts/run_step.py"
