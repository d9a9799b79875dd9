"""Fault tests run the real CLI (and TUI) against a private home: the app tests' fixtures."""

from tests.app.conftest import CLI, Run, _private_environment, cli, seeded, write_wav  # noqa: F401
