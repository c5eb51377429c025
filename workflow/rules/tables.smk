# Tables and the claims verdicts, from every run's metrics (with their probe records) and evaluation;
# each file records the run it belongs to.


rule tables:
    input:
        metrics=runs("results/metrics/{dataset}/{regime}/seed{seed}.json"),
        evaluations=evaluation_outputs(),
        gan=gan_runs("results/experiments/gan/{dataset}/seed{seed}.csv"),
        dynamics_long=long_dynamics_runs(),
        synthetic=(
            ["results/experiments/synthetic_compare.csv"]
            if EXPERIMENTS.synthetic.run
            else []
        ),
    output:
        accuracy=report(
            "results/tables/accuracy.md",
            caption="../report/tables.rst",
            category="Tables",
        ),
        ood=report(
            "results/tables/ood.md", caption="../report/tables.rst", category="Tables"
        ),
        detection=report(
            "results/tables/detection.md",
            caption="../report/tables.rst",
            category="Tables",
        ),
        claims=report(
            "results/tables/claims.md",
            caption="../report/tables.rst",
            category="Tables",
        ),
        bonus=report(
            "results/tables/bonus.md", caption="../report/bonus.rst", category="Bonus"
        ),
        summary="results/tables/summary.json",
    log:
        "logs/tables.log",
    conda:
        CONDA_ENV
    threads: 1
    params:
        config=CONFIG_FILE,
        evaluations=lambda w, input: " ".join(
            os.path.dirname(p) for p in input.evaluations
        ),
        gan=lambda w, input: f"--gan {' '.join(input.gan)}" if input.gan else "",
        dynamics_long=lambda w, input: (
            f"--dynamics-long {' '.join(input.dynamics_long)}"
            if input.dynamics_long
            else ""
        ),
        synthetic=lambda w, input: (
            f"--synthetic {' '.join(input.synthetic)}" if input.synthetic else ""
        ),
        outdir=lambda w, output: os.path.dirname(output.summary),
    shell:
        "snnl tables --metrics {input.metrics} --evaluations {params.evaluations}"
        " {params.gan} {params.dynamics_long} {params.synthetic}"
        " --config {params.config} --out {params.outdir} > {log} 2>&1"


# What each bonus does (docs/RESULTS.md; reported, not judged): pinned fraction and gradient
# ratio per regularised layer during training, from the non-baseline runs' probe records.
rule bonus_figure:
    input:
        metrics=expand(
            "results/metrics/{dataset}/{regime}/seed{seed}.json",
            dataset=DATASETS,
            regime=[r for r in REGIMES if r != "baseline"],
            seed=SEEDS,
        ),
    output:
        figure=report(
            "results/figures/bonus.png",
            caption="../report/bonus.rst",
            category="Bonus",
        ),
    log:
        "logs/bonus_figure.log",
    conda:
        CONDA_ENV
    threads: 1
    shell:
        "snnl bonus-figure --metrics {input.metrics} --figure {output.figure} > {log} 2>&1"


# The report's landing page: claims.md's overview table, each claim linked to the report items
# it rests on (snnl.pipeline.report.CLAIM_EVIDENCE); workflow/report/workflow.rst includes it.
rule report_claims:
    input:
        claims=rules.tables.output.claims,
    output:
        "results/tables/claims.rst",
    log:
        "logs/report_claims.log",
    conda:
        CONDA_ENV
    threads: 1
    params:
        report_items=figure_outputs()
        + [rules.tables.output[k] for k in ("accuracy", "ood", "detection", "claims")],
    shell:
        "snnl report-claims --claims {input.claims} --items {params.report_items}"
        " --out {output} > {log} 2>&1"
