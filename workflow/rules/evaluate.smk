# Evaluation of every trained model, and the baseline-vs-entangled figures (first seed).


rule evaluate:
    input:
        unpack(outlier_dirs),
        checkpoint="results/checkpoints/{dataset}/{regime}/seed{seed}.pt",
        data=lambda w: prepared(w.dataset),
    output:
        summary="results/evaluation/{dataset}/{regime}/seed{seed}/summary.json",
        detection="results/evaluation/{dataset}/{regime}/seed{seed}/detection.csv",
        samples="results/evaluation/{dataset}/{regime}/seed{seed}/samples.csv",
    log:
        "logs/evaluate/{dataset}/{regime}/seed{seed}.log",
    conda:
        CONDA_ENV
    threads: THREADS
    resources:
        gpu=GPU,
    params:
        config=CONFIG_FILE,
        evaluate=lambda w: section("evaluate"),
        outliers=lambda w: " ".join(
            f"{o}=data/prepared/outliers/{w.dataset}/{o}" for o in OUTLIERS[w.dataset]
        ),
        outdir=lambda w, output: os.path.dirname(output.summary),
    shell:
        "OMP_NUM_THREADS={threads} snnl evaluate --checkpoint {input.checkpoint} --data {input.data}"
        " $(test -n '{params.outliers}' && echo --outliers {params.outliers})"
        " --config {params.config} --out {params.outdir} --quiet > {log} 2>&1"


rule compare_regimes:
    input:
        baseline=f"results/evaluation/{{dataset}}/baseline/seed{FIRST_SEED}/summary.json",
        entangled=f"results/evaluation/{{dataset}}/entangled/seed{FIRST_SEED}/summary.json",
    output:
        tsne=report(
            "results/figures/{dataset}_tsne_layers.png",
            caption="../report/tsne_layers.rst",
            category="E7 representations",
        ),
        gradients=report(
            "results/figures/{dataset}_tsne_gradients.png",
            caption="../report/tsne_gradients.rst",
            category="E10 adversarial gradients",
        ),
        confidence=report(
            "results/figures/{dataset}_confidence.png",
            caption="../report/confidence.rst",
            category="E8 outlier confidence",
        ),
        detection="results/evaluation/{dataset}/compare/detection_compare.csv",
    log:
        "logs/compare_regimes/{dataset}.log",
    conda:
        CONDA_ENV
    threads: 1
    params:
        baseline=lambda w, input: os.path.dirname(input.baseline),
        entangled=lambda w, input: os.path.dirname(input.entangled),
    shell:
        "snnl compare-regimes --baseline {params.baseline} --entangled {params.entangled}"
        " --tsne-layers {output.tsne} --tsne-gradients {output.gradients}"
        " --confidence {output.confidence} --detection {output.detection} --quiet > {log} 2>&1"
