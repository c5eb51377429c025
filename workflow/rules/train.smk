# Training: optional tuning per (dataset, regime), then one model per (dataset, regime, seed).


rule tune:
    input:
        data=lambda w: prepared(w.dataset),
    output:
        "results/tuning/{dataset}/{regime}.json",
    log:
        "logs/tune/{dataset}/{regime}.log",
    conda:
        CONDA_ENV
    threads: THREADS
    resources:
        gpu=GPU,
    params:
        config=CONFIG_FILE,
        train=lambda w: section("train"),
        tune=lambda w: section("tune"),
        seed=P.tune_seed,
    shell:
        "OMP_NUM_THREADS={threads} snnl tune --data {input.data} --regime {wildcards.regime}"
        " --seed {params.seed} --config {params.config} --out {output} --quiet > {log} 2>&1"


# A run that diverges is an outcome, not a failed job: it is recorded (snnl.training.outcome),
# evaluated as diverged, counted by the tables and left out of every number (docs/RESULTS.md).
rule train:
    input:
        data=lambda w: prepared(w.dataset),
        params=tuned_params,
    output:
        checkpoint="results/checkpoints/{dataset}/{regime}/seed{seed}.pt",
        metrics="results/metrics/{dataset}/{regime}/seed{seed}.json",
        log="results/logs/{dataset}/{regime}/seed{seed}.csv",
        probe="results/dynamics/{dataset}/{regime}/seed{seed}.csv",
    log:
        "logs/train/{dataset}/{regime}/seed{seed}.log",
    benchmark:
        "results/benchmarks/train/{dataset}/{regime}/seed{seed}.tsv"
    conda:
        CONDA_ENV
    threads: THREADS
    resources:
        gpu=GPU,
    params:
        config=CONFIG_FILE,
        train=lambda w: section("train"),
        tuned=lambda w, input: f"--params {input.params}" if input.params else "",
    shell:
        "OMP_NUM_THREADS={threads} snnl train --data {input.data} --regime {wildcards.regime}"
        " --seed {wildcards.seed} --config {params.config} {params.tuned} --out {output.checkpoint}"
        " --metrics {output.metrics} --log {output.log} --probe-log {output.probe} --on-divergence record"
        " > {log} 2>&1"
