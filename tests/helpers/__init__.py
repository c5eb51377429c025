"""Shared test code that is not a test: local services the integration tests start for
themselves (``helpers.services``). The older helpers sit beside the tests
(``workflow_helpers``, ``oracles``, ``training_data``)."""
