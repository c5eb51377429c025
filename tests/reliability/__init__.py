"""Reliability drills (issue 9). The fast ones run with `pytest` (`make test`): bad configs,
broken inputs, numerical divergence and a corrupted DVC remote (test_*.py here). The slow ones
(kill, determinism, sharing) are a script: `make drills` (drills.py). Results: docs/RELIABILITY.md."""
