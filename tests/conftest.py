import os
import sys

import pytest
import torch

# tests/ on the path: shared test code is imported from tests/helpers/ (helpers.oracles, ...)
sys.path.insert(0, os.path.dirname(__file__))

# Two cores: one intra-op thread per test process keeps runs repeatable and fast.
torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _restore_threads():
    """Tests that set torch's thread count leave it as they found it."""
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
    yield


@pytest.fixture
def tiny_config():
    """The tiny config: the real config/default.yaml shrunk by a few ``--config`` overrides
    (helpers.configs.TINY, applied by snnl.overrides); a fresh dict for each test to change."""
    from helpers.configs import tiny_config

    return tiny_config()


@pytest.fixture
def config_with():
    """``config_with(*entries)``: config/default.yaml with ``--config`` entries (``SECTION=YAML``) applied."""
    from helpers.configs import config_with

    return config_with


@pytest.fixture(scope="session")
def tiny_reference(tmp_path_factory):
    """The tiny config's whole DAG (the ``tiny_config`` fixture's) run once per session, with the
    default profile, in a copy of the workflow (tests/helpers/workflow.py). Tests read it or copy
    it (``helpers.workflow.copy_run``), never change it."""
    from helpers.workflow import snakemake, workdir

    work = workdir(tmp_path_factory.mktemp("tiny-reference"))
    snakemake(work, "--configfile", "config/tiny.yaml", "--cores", "2")
    return work
