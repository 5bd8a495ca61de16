# The calibration of the SGLD settings (target `calibrate`, not part of `all`): short chains at
# every step size × nβ × γ of analysis.calibration, one job per setting (its chains in one
# process), then a table and a figure per experiment marking each setting pass/fail with the
# reason, and the suggested setting.


rule calibration_point:
    input:
        unpack(data_files),
        accepted=accepted_model,
        model=model_of(rules.train_model.output.model),
    output:
        summary="results/{experiment}/calibration/{point}.tsv",
    log:
        "results/logs/calibration_point/{experiment}/{point}.log",
    benchmark:
        "results/benchmarks/calibration_point/{experiment}/{point}.tsv"
    conda:
        "../../envs/torch.yaml"
    threads: 1
    resources:
        gpu=uses_gpu("sampling"),
    params:
        arguments=params_of("calibration_point"),
        code=code_of("calibration_point"),
    script:
        "../scripts/calibration_point.py"


rule calibrate_experiment:
    input:
        points=calibration_points,
    output:
        table="results/{experiment}/calibration.tsv",
        figure="results/figures/{experiment}/calibration.png",
    log:
        "results/logs/calibrate_experiment/{experiment}.log",
    benchmark:
        "results/benchmarks/calibrate_experiment/{experiment}.tsv"
    conda:
        "../../envs/analysis.yaml"
    threads: 1
    params:
        arguments=params_of("calibrate_experiment"),
        code=code_of("calibrate_experiment"),
    script:
        "../scripts/calibrate_experiment.py"
