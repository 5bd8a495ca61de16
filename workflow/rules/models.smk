# Train each experiment's model and keep log-spaced checkpoints for the developmental
# analyses, or take pretrained weights and the user's own checkpoints.


rule train_model:
    input:
        unpack(data_files),
    output:
        model="results/{experiment}/model.pt",
        checkpoints="results/{experiment}/checkpoints.pt",
        history="results/{experiment}/training.tsv",
    log:
        "results/logs/train_model/{experiment}.log",
    benchmark:
        "results/benchmarks/train_model/{experiment}.tsv"
    wildcard_constraints:
        experiment=only(PLAN.trained),
    conda:
        "../../envs/torch.yaml"
    threads: 1
    resources:
        gpu=uses_gpu("training"),
    params:
        arguments=params_of("train_model"),
        code=code_of("train_model"),
    script:
        "../scripts/train_model.py"


rule import_model:
    input:
        # the weights and checkpoint files are inputs: replacing one reruns what depends on it
        unpack(pretrained_files),
    output:
        model="results/{experiment}/model.pt",
        checkpoints="results/{experiment}/checkpoints.pt",
    log:
        "results/logs/import_model/{experiment}.log",
    benchmark:
        "results/benchmarks/import_model/{experiment}.tsv"
    wildcard_constraints:
        experiment=only(PLAN.pretrained),
    conda:
        "../../envs/torch.yaml"
    threads: 1
    params:
        arguments=params_of("import_model"),
        code=code_of("import_model"),
    script:
        "../scripts/import_model.py"
