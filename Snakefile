# snnl: the paper's experiments as one DAG, from data to report.
#   snakemake --profile workflow/profiles/default                      # config/default.yaml
#   snakemake --profile workflow/profiles/default --configfile config/paper.yaml
# Rules are thin: each runs one `snnl` command; all logic lives in src/snnl.
from snakemake.utils import min_version

min_version("9.0")


if not workflow.overwrite_configfiles:

    configfile: "config/default.yaml"


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/experiments.smk"
include: "workflow/rules/tables.smk"


rule all:
    default_target: True
    input:
        all_outputs(),
