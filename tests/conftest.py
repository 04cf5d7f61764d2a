"""The suite's split for ``make test`` (pytest-xdist, ``-n 2 --dist loadscope``).

The integration tests run on one worker, one after another, as without xdist: no two stacks or load
phases at once, and the session's shared stack starts once. The unit and app tests (and the few
integration modules in APART) run on the other worker meanwhile, a module at a time (module-scoped
fixtures built once). An integration test spends most of its time waiting for processes, a unit test
on a core: side by side they share the two cores better than one after another.

(xdist's own ``--dist loadgroup`` renames a test's node id to carry its group, which pytest 9's node ids
no longer allow: the split is this scheduler's instead.)
"""

from __future__ import annotations

from typing import Any

import pytest

INTEGRATION = "tests/integration/"
# Integration modules that start no stack and put no load (their own servers or none, generous timeouts):
# scheduled as the unit tests are, beside the stacks, so the integration worker has less to do.
APART = {
    "tests/integration/test_container_entrypoints.py",
    "tests/integration/test_stack_ports.py",
    "tests/integration/test_task_events.py",
}


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    if config.getoption("dist") != "loadscope":
        return None  # xdist's own scheduler for the other modes
    from xdist.scheduler import LoadScopeScheduling

    class IntegrationApart(LoadScopeScheduling):  # type: ignore[misc]
        """loadscope, with every integration test in one scope (the largest: scheduled first)."""

        def _split_scope(self, nodeid: str) -> str:
            module = nodeid.split("::", 1)[0]
            return INTEGRATION if module.startswith(INTEGRATION) and module not in APART else module

    return IntegrationApart(config, log)
