"""How long a Locust user waits after failures, so that a dead or failing target is not hammered.

The benchmark's users are a closed loop: each sends its next request as soon as the last one ends
(``wait_time`` 0). On a target that refuses connections or answers 5xx at once, that loop spins: a
core of the load generator at 100 % for nothing. So after a failure of the target the user waits
a short, capped, jittered time ("full jitter": uniform in [0, min(cap, base × 2^(n−1))] after n
consecutive failures), and resumes the closed loop on the first answer that is not one. With no
failure the wait is exactly 0, as before.

No Locust here (importing it monkey-patches the process): the locustfile's users call these.
"""

from __future__ import annotations

import random
from collections.abc import Callable

BASE_S = 0.05  # the first failure's cap
MAX_DOUBLINGS = 30  # beyond this the cap is reached anyway (and 2**n stays a small float)


def is_target_failure(status: int) -> bool:
    """A failure of the target itself: no answer (connection refused or reset, timeout: status 0) or
    a 5xx. A 4xx or an answer that fails the client's checks is the target up and answering."""
    return status == 0 or status >= 500


def failure_backoff_s(failures: int, max_s: float, rand: Callable[[], float] = random.random) -> float:
    """Seconds to wait after ``failures`` consecutive failures of the target: 0 with none or when
    ``max_s`` is 0 (backoff off), else uniform in [0, min(max_s, BASE_S × 2^(failures−1))]."""
    if failures <= 0 or max_s <= 0:
        return 0.0
    cap = min(max_s, BASE_S * 2.0 ** min(failures - 1, MAX_DOUBLINGS))
    return rand() * cap


class FailureBackoff:
    """One user's consecutive failures of the target and the wait they call for."""

    def __init__(self, max_s: float, rand: Callable[[], float] = random.random) -> None:
        self.max_s = max_s
        self.rand = rand
        self.failures = 0

    def record(self, status: int) -> None:
        """Count a request's status: a target failure adds one, any other answer ends the streak."""
        self.failures = self.failures + 1 if is_target_failure(status) else 0

    def wait_s(self) -> float:
        return failure_backoff_s(self.failures, self.max_s, self.rand)
