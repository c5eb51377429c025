# Analysis experiments E1-E5: SNNL as a measuring instrument.


rule synthetic:
    output:
        csv="results/experiments/synthetic_{mode}.csv",
        figure=report(
            "results/figures/synthetic_{mode}.png",
            caption="../report/synthetic.rst",
            category="E1-E2 synthetic",
        ),
    log:
        "logs/synthetic/{mode}.log",
    wildcard_constraints:
        mode="minimise|compare",
    conda:
        CONDA_ENV
    threads: 1
    params:
        config=CONFIG_FILE,
        experiments=lambda w: experiment_section("synthetic"),
    shell:
        "snnl synthetic --mode {wildcards.mode} --config {params.config} --csv {output.csv}"
        " --figure {output.figure} --threads {threads} --quiet > {log} 2>&1"


rule temperature_curve:
    input:
        data=lambda w: prepared(w.dataset),
        checkpoints=expand(
            "results/checkpoints/{{dataset}}/{regime}/seed{seed}.pt",
            regime=REGIMES,
            seed=FIRST_SEED,
        ),
    output:
        csv="results/experiments/temperature_curve_{dataset}.csv",
        minima="results/experiments/temperature_curve_minima_{dataset}.csv",
        figure=report(
            "results/figures/temperature_curve_{dataset}.png",
            caption="../report/temperature_curve.rst",
            category="E3 temperature",
        ),
    log:
        "logs/temperature_curve/{dataset}.log",
    conda:
        CONDA_ENV
    threads: THREADS
    params:
        config=CONFIG_FILE,
        experiments=lambda w: experiment_section("temperature_curve"),
        checkpoints=lambda w, input: " ".join(
            f"--checkpoint {c} --label {r}" for c, r in zip(input.checkpoints, REGIMES)
        ),
    shell:
        "snnl temperature-curve --data {input.data} {params.checkpoints} --config {params.config}"
        " --csv {output.csv} --minima {output.minima} --figure {output.figure}"
        " --threads {threads} > {log} 2>&1"


rule dynamics_figure:
    input:
        runs("results/dynamics/{dataset}/{regime}/seed{seed}.csv"),
    output:
        csv="results/tables/dynamics.csv",
        figure=report(
            "results/figures/dynamics.png",
            caption="../report/dynamics.rst",
            category="E4 per-layer dynamics",
        ),
    log:
        "logs/dynamics_figure.log",
    conda:
        CONDA_ENV
    threads: 1
    params:
        config=CONFIG_FILE,
        experiments=lambda w: experiment_section("dynamics"),
    shell:
        "snnl dynamics-figure --logs {input} --config {params.config} --csv {output.csv}"
        " --figure {output.figure} --threads {threads} > {log} 2>&1"


rule gan:
    input:
        data=lambda w: prepared(w.dataset),
    output:
        csv="results/experiments/gan/{dataset}/seed{seed}.csv",
        figure=report(
            "results/figures/gan/{dataset}_seed{seed}.png",
            caption="../report/gan.rst",
            category="E5 GAN",
        ),
        samples=report(
            "results/figures/gan/{dataset}_seed{seed}_samples.png",
            caption="../report/gan_samples.rst",
            category="E5 GAN",
        ),
    log:
        "logs/gan/{dataset}/seed{seed}.log",
    conda:
        CONDA_ENV
    threads: THREADS
    resources:
        gpu=GPU,
    params:
        config=CONFIG_FILE,
        experiments=lambda w: experiment_section("gan"),
    shell:
        "snnl gan --data {input.data} --config {params.config} --seed {wildcards.seed} --csv {output.csv}"
        " --figure {output.figure} --samples {output.samples} --threads {threads} --quiet > {log} 2>&1"


rule dynamics_long:
    input:
        data=lambda w: prepared(w.dataset),
        params=lambda w: tuning_file(w.dataset, "baseline"),
    output:
        probe="results/dynamics_long/{dataset}/baseline/seed{seed}.csv",
        checkpoint="results/dynamics_long/{dataset}/baseline/seed{seed}.pt",
        metrics="results/dynamics_long/{dataset}/baseline/seed{seed}.json",
        log="results/dynamics_long/{dataset}/baseline/seed{seed}_steps.csv",
    log:
        "logs/dynamics_long/{dataset}/seed{seed}.log",
    conda:
        CONDA_ENV
    threads: THREADS
    resources:
        gpu=GPU,
    params:
        config=CONFIG_FILE,
        train=lambda w: section("train"),
        epochs=EXPERIMENTS.dynamics.long_epochs or 0,
        tuned=lambda w, input: f"--params {input.params}" if input.params else "",
    shell:
        "OMP_NUM_THREADS={threads} snnl train --data {input.data} --regime baseline --seed {wildcards.seed}"
        " --epochs {params.epochs} --config {params.config} {params.tuned} --out {output.checkpoint}"
        " --metrics {output.metrics} --log {output.log} --probe-log {output.probe} > {log} 2>&1"
