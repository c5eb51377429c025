"""The training regimes, named once: what `{regime}` means in every path, table and figure.

baseline:  cross-entropy only (the SNNL of each hidden layer is measured, not optimised);
entangled: cross-entropy minus alpha times the sum of the hidden layers' SNNL (the paper's Eq. 3).
"""

BASELINE = "baseline"
ENTANGLED = "entangled"
REGIMES = (BASELINE, ENTANGLED)  # in the order tables and figures show them
