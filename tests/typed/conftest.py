"""Fixtures shared with the CLI and evaluation tests: an isolated home with the scripted backend,
and a synthetic train-ticket set."""

from tests.cli.conftest import home  # noqa: F401 - a fixture
from tests.evaluation.conftest import ticket_set  # noqa: F401 - a fixture
