# The calibration of the SGLD settings (target `calibrate`, not part of `all`): short chains at
# every step size × nβ × γ of analysis.calibration, one job per setting (its chains in one
# process), then a table and a figure per experiment marking each setting pass/fail with the
# reason, and the suggested setting.


rule calibration_point:
    input:
        unpack(inputs_of("calibration_point")),
    output:
        **outputs_of("calibration_point"),
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
        **params_of("calibration_point"),
    script:
        "../scripts/run_step.py"


rule calibrate_experiment:
    input:
        unpack(inputs_of("calibrate_experiment")),
    output:
        **outputs_of("calibrate_experiment"),
    log:
        "results/logs/calibrate_experiment/{experiment}.log",
    benchmark:
        "results/benchmarks/calibrate_experiment/{experiment}.tsv"
    conda:
        "../../envs/analysis.yaml"
    threads: 1
    params:
        **params_of("calibrate_experiment"),
    script:
        "../scripts/run_step.py"
