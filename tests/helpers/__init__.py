"""Shared test code that is not a test; tests import it from here and never from each other:

    helpers.oracles         independent reference implementations (float64 loops, plain autograd)
    helpers.digits          scikit-learn's 8x8 digits and a small MLP trained on them in a second
    helpers.training_data   small training sets for the training and tuning tests
    helpers.tables          builders of metrics JSONs and evaluation summaries; the textbook t interval
    helpers.workflow        a copy of the workflow and the `snakemake` command line on it
    helpers.services        local services the integration tests start for themselves (SLURM, sshd)
    helpers.torchvision_files  tiny datasets in torchvision's on-disk formats (IDX, CIFAR, SVHN)
"""
