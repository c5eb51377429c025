"""Training: configs, the loop, the probe, batching. Public entry points live in :mod:`snnl.train`."""
