# Config validation and the helpers every rule file uses.
import json
import os
from pathlib import Path

import yaml
from snakemake.exceptions import WorkflowError

# Every section of the config checked in one pass against the typed models of snnl.config
# (unknown keys, types, ranges, dataset and layer names; each model the pipeline trains is
# built once), here at parse time, so a bad config fails before any job starts, in one line
# naming the key. Values given with --config are first re-read as YAML, as the same text in
# the config file would be (Snakemake leaves every value nested in one a string), and an error
# about one names the --config entry instead of the config file.
from snnl.pipeline.preflight import check_document
from snnl.overrides import apply_command_line_config, config_source
from snnl.errors import SnnlError
from snnl.regimes import REGIMES as ALL_REGIMES, TUNED_AS

CONFIG_SOURCE = (
    f"config ({', '.join(str(f) for f in workflow.configfiles) or 'defaults'})"
)
ORIGINS = {}  # {dotted key: the --config entry that set it}


def invalid_config(err):
    """The WorkflowError for a bad config: ``err``'s message, which starts with CONFIG_SOURCE,
    saying instead where the faulty value came from (a config file or the command line).
    """
    message = str(err).replace(
        CONFIG_SOURCE, config_source(str(err), ORIGINS, CONFIG_SOURCE), 1
    )
    return WorkflowError(f"invalid configuration: {message}")


try:
    ORIGINS = apply_command_line_config(config, workflow.config_settings.config_args)
    SETTINGS = check_document(config, CONFIG_SOURCE)
except SnnlError as err:
    raise invalid_config(err) from None


def _effective_config_file():
    """The merged, validated config, written where every job reads it: one source of truth,
    also when --config overrides a value on the command line. Rewritten only on change.
    """
    text = yaml.safe_dump(dict(config), sort_keys=True)
    path = Path(".snakemake/snnl/config.yaml")
    if not path.exists() or path.read_text() != text:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".yaml.tmp")
        tmp.write_text(text)
        os.replace(tmp, path)
    return str(path)


CONFIG_FILE = _effective_config_file()

# the software environment (the same pins as requirements.txt), for --software-deployment-method conda
CONDA_ENV = "../../environment.yml"

P = SETTINGS.pipeline
DATASETS = P.datasets
REGIMES = P.regimes
SEEDS = P.seeds
OUTLIERS = {d: P.outlier_sets(d) for d in DATASETS}
EXPERIMENTS = SETTINGS.experiments  # each experiment's switch next to its settings
THREADS = P.threads
GPU = 1 if P.gpu_jobs else 0
FIRST_SEED = SEEDS[0]


wildcard_constraints:
    dataset="[a-z0-9_]+",
    outlier="[a-z0-9_]+",
    regime="|".join(ALL_REGIMES),
    seed=r"\d+",


def canonical(value):
    """A config value as canonical JSON (sorted keys), so that a rule's params change when a
    value changes, never when only the order of keys in the YAML file does."""
    return json.dumps(value, sort_keys=True)


def section(name):
    """A config section, as a rule's params: changing it reruns the rules that use it."""
    return canonical(config.get(name) or {})


def experiment_section(name):
    """The settings of one analysis experiment as a rule's params, without its switch (which
    says whether, or on which datasets, to run it; changing it adds or drops jobs, not reruns).
    """
    settings = dict((config.get("experiments") or {}).get(name) or {})
    settings.pop(getattr(EXPERIMENTS, name).switch, None)
    return canonical(settings)


def dataset_section(name):
    """The options of one dataset, as a rule's params."""
    return canonical((config.get("datasets") or {}).get(name, {}))


def prepared(dataset):
    return f"data/prepared/{dataset}"


def outlier_dirs(wildcards):
    return {
        o: f"data/prepared/outliers/{wildcards.dataset}/{o}"
        for o in OUTLIERS[wildcards.dataset]
    }


def tuning_file(dataset, regime):
    """The tuning result a run of ``regime`` trains with (a regime of TUNED_AS takes another's), or none."""
    if P.tune:
        return f"results/tuning/{dataset}/{TUNED_AS.get(regime, regime)}.json"
    return []


def tuned_params(wildcards):
    return tuning_file(wildcards.dataset, wildcards.regime)


def gan_runs(pattern):
    return expand(pattern, dataset=EXPERIMENTS.gan.datasets, seed=EXPERIMENTS.gan.seeds)


def long_dynamics_runs():
    """C1's long-horizon baseline runs (experiments.dynamics.long_epochs), or none."""
    if not EXPERIMENTS.dynamics.long_epochs:
        return []
    return expand(
        "results/dynamics_long/{dataset}/baseline/seed{seed}.csv",
        dataset=DATASETS,
        seed=EXPERIMENTS.dynamics.long_seeds,
    )


def runs(pattern, **extra):
    return expand(pattern, dataset=DATASETS, regime=REGIMES, seed=SEEDS, **extra)


def evaluation_outputs():
    return runs("results/evaluation/{dataset}/{regime}/seed{seed}/summary.json")


def figure_outputs():
    out = []
    if EXPERIMENTS.synthetic.run:
        out += [
            "results/figures/synthetic_minimise.png",
            "results/figures/synthetic_compare.png",
        ]
    if EXPERIMENTS.temperature_curve.run:
        out += expand(
            "results/figures/temperature_curve_{dataset}.png", dataset=DATASETS
        )
    if EXPERIMENTS.dynamics.run:
        out += ["results/figures/dynamics.png"]
    out += gan_runs("results/figures/gan/{dataset}_seed{seed}.png")
    if any(r != "baseline" for r in REGIMES):
        out += ["results/figures/bonus.png"]
    if {"baseline", "entangled"} <= set(REGIMES):
        out += expand(
            "results/figures/{dataset}_{kind}.png",
            dataset=DATASETS,
            kind=["tsne_layers", "tsne_gradients", "confidence"],
        )
    return out


def all_outputs():
    return (
        runs("results/checkpoints/{dataset}/{regime}/seed{seed}.pt")
        + evaluation_outputs()
        + figure_outputs()
        + ["results/tables/claims.md", "results/tables/claims.rst"]
    )
