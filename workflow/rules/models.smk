# Train each experiment's models (config key models: model 0 in results/<experiment>/, model m
# in results/<experiment>/model<m>/) and keep log-spaced checkpoints for the developmental
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


# The gate between training and sampling: a model that missed its convergence target stops the
# run here, before any sampling job, unless training.allow_unconverged (its own job, so the
# refused model's file is kept).
rule accept_model:
    input:
        model=rules.train_model.output.model,
    output:
        verdict="results/{experiment}/model-accepted.tsv",
    log:
        "results/logs/accept_model/{experiment}.log",
    benchmark:
        "results/benchmarks/accept_model/{experiment}.tsv"
    wildcard_constraints:
        experiment=only(PLAN.trained),
    localrule: True
    conda:
        "../../envs/analysis.yaml"
    threads: 1
    params:
        arguments=params_of("accept_model"),
        code=code_of("accept_model"),
    script:
        "../scripts/accept_model.py"


# The trained model's size and final accuracies, a per-experiment reading like the diagnostics
# (results/<experiment>/model-metrics.tsv): what a capacity sweep plots its readings against.
rule describe_model:
    input:
        history=rules.train_model.output.history,
    output:
        metrics="results/{experiment}/model-metrics.tsv",
    log:
        "results/logs/describe_model/{experiment}.log",
    benchmark:
        "results/benchmarks/describe_model/{experiment}.tsv"
    wildcard_constraints:
        experiment=only(PLAN.trained),
    conda:
        "../../envs/analysis.yaml"
    threads: 1
    params:
        arguments=params_of("describe_model"),
        code=code_of("describe_model"),
    script:
        "../scripts/describe_model.py"


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
