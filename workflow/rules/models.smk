# Train each experiment's model; keep log-spaced checkpoints for the developmental analyses.


rule train_model:
    wildcard_constraints:
        experiment="|".join(TRAINED),
    output:
        model="results/{experiment}/model.pt",
        checkpoints="results/{experiment}/checkpoints.pt",
        history="results/{experiment}/training.tsv",
    params:
        task=lambda w: experiment(w)["task"],
        data=lambda w: experiment(w)["data"],
        model=lambda w: experiment(w)["model"],
        training=lambda w: experiment(w)["training"],
    log:
        "results/logs/train_model/{experiment}.log",
    benchmark:
        "results/benchmarks/train_model/{experiment}.tsv"
    threads: 1
    conda:
        "../../envs/torch.yaml"
    script:
        "../scripts/train_model.py"
