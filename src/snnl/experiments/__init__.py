"""The analysis experiments (PAPER.md section 2, E1-E5): SNNL as a measuring instrument.

    synthetic          E1 (minimise the SNNL of 2-D points), E2 (triplet loss vs SNNL, min and max)
    temperature_curve  E3 (SNNL against log T for raw inputs and each layer of a model)
    dynamics           E4 (per-layer SNNL at the optimal T during training, from the probe logs)
    gan                E5 (SNNL between real and generated data during GAN training)

Each is driven by a CLI command (``snnl synthetic``, ``snnl temperature-curve``,
``snnl dynamics-figure``, ``snnl gan``) that writes a CSV and a PNG atomically; the
settings live under ``experiments:`` in the YAML config (see :mod:`snnl.experiments.config`).
"""
