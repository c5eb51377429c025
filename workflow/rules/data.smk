# Data: every dataset prepared once; outlier sets adapted to their in-distribution set.


rule prepare_data:
    output:
        directory("data/prepared/{dataset}"),
    log:
        "logs/prepare_data/{dataset}.log",
    conda:
        CONDA_ENV
    threads: 1
    params:
        config=CONFIG_FILE,
        options=lambda w: dataset_section(w.dataset),
    shell:
        "snnl prepare-data --dataset {wildcards.dataset} --config {params.config}"
        " --out {output} > {log} 2>&1"


rule prepare_outlier:
    output:
        directory("data/prepared/outliers/{dataset}/{outlier}"),
    log:
        "logs/prepare_outlier/{dataset}/{outlier}.log",
    conda:
        CONDA_ENV
    threads: 1
    params:
        config=CONFIG_FILE,
        options=lambda w: dataset_section(w.outlier),
    shell:
        "snnl prepare-data --dataset {wildcards.outlier} --like {wildcards.dataset}"
        " --config {params.config} --out {output} > {log} 2>&1"
