# Train each experiment's model and keep log-spaced checkpoints for the developmental
# analyses, or (ImageNet) take pretrained weights and the user's own checkpoints; the WordNet
# hierarchy of the ImageNet classes.


rule train_model:
    wildcard_constraints:
        experiment="|".join(TRAINED),
    input:
        data_files,
    output:
        model="results/{experiment}/model.pt",
        checkpoints="results/{experiment}/checkpoints.pt",
        history="results/{experiment}/training.tsv",
    params:
        task=lambda w: experiment(w)["task"],
        data=data_settings,
        model=lambda w: experiment(w)["model"],
        training=lambda w: experiment(w)["training"],
    resources:
        gpu=lambda w: int(experiment(w)["training"].get("device", "cpu").startswith("cuda")),
    log:
        "results/logs/train_model/{experiment}.log",
    benchmark:
        "results/benchmarks/train_model/{experiment}.tsv"
    threads: 1
    conda:
        "../../envs/torch.yaml"
    script:
        "../scripts/train_model.py"


rule import_model:
    wildcard_constraints:
        experiment="|".join(PRETRAINED) or "(?!)",  # no pretrained experiment: matches nothing
    input:
        # the weights and checkpoint files are inputs: replacing one reruns what depends on it
        weights=lambda w: str(get_task("imagenet").weights_path(experiment(w)["model"])),
        checkpoints=lambda w: [c["path"] for c in experiment(w)["model"]["checkpoints"]],
    output:
        model="results/{experiment}/model.pt",
        checkpoints="results/{experiment}/checkpoints.pt",
    params:
        task=lambda w: experiment(w)["task"],
        data=data_settings,
        model=lambda w: experiment(w)["model"],
    log:
        "results/logs/import_model/{experiment}.log",
    benchmark:
        "results/benchmarks/import_model/{experiment}.tsv"
    threads: 1
    conda:
        "../../envs/torch.yaml"
    script:
        "../scripts/import_model.py"


rule wordnet_hierarchy:
    output:
        table=HIERARCHY_TABLE,
    params:
        wordnet=config.get("wordnet"),
    log:
        "results/logs/wordnet_hierarchy/imagenet1k.log",
    benchmark:
        "results/benchmarks/wordnet_hierarchy/imagenet1k.tsv"
    threads: 1
    conda:
        "../../envs/analysis.yaml"
    script:
        "../scripts/wordnet_hierarchy.py"
