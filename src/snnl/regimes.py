"""The training regimes, named once: what `{regime}` means in every path, table and figure.

baseline:           cross-entropy only (the SNNL of each hidden layer is measured, not optimised);
entangled:          cross-entropy minus alpha times the sum of the hidden layers' SNNL (the paper's
                    Eq. 3), with the exact log-space loss and online temperatures;
official:           the official cleverhans demo's objective: the same sum with the cleverhans v3.1
                    numerics (:func:`snnl.legacy_snnl`), alpha = 10 and a fixed T = 100, at the
                    demo's activation scale ([0, 1] pixels, He-normal std 1/sqrt(fan_in) weights,
                    zero biases);
official_our_scale: ``official`` at our activation scale (default init, normalised inputs).

:data:`REGIME_SETTINGS` holds each regime's training settings; they sit above ``train:`` and its
per-dataset overrides and below ``train.regimes.<regime>`` and tuned parameters (snnl.training.config).
"""

BASELINE = "baseline"
ENTANGLED = "entangled"
OFFICIAL = "official"
OFFICIAL_OUR_SCALE = "official_our_scale"
REGIMES = (BASELINE, ENTANGLED, OFFICIAL, OFFICIAL_OUR_SCALE)  # in the order tables and figures show them
DEFAULT_REGIMES = (BASELINE, ENTANGLED)  # what a config without `pipeline.regimes` trains

_OFFICIAL_OBJECTIVE = {"numerics": "cleverhans", "alpha": 10.0, "initial_temperature": 100.0, "temperature": "fixed"}
REGIME_SETTINGS: dict[str, dict] = {
    BASELINE: {},  # the loop gives it alpha = 0
    ENTANGLED: {},
    OFFICIAL: {**_OFFICIAL_OBJECTIVE, "init": "he_normal", "normalize": False},
    OFFICIAL_OUR_SCALE: dict(_OFFICIAL_OBJECTIVE),
}
# a regime that is not tuned itself trains with another's tuned parameters (the scale comparison
# changes the scale only)
TUNED_AS = {OFFICIAL_OUR_SCALE: OFFICIAL}
