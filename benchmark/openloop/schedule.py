"""When each request of one offered rate is sent: seconds after the rate's start, fixed before the first
request goes out, so the schedule cannot depend on the answers (an open loop).

``poisson`` (the default): independent arrivals, exponential gaps of mean ``1 / rate`` — many users
acting on their own, bursts included. ``constant``: one request every ``1 / rate`` seconds.

Every rate of a sweep uses the same seed on purpose (common random numbers): a Poisson schedule at rate r
is then the same sequence of draws as at rate 2r, stretched twice as long, so two rates differ by their
rate and not by their luck.
"""

from __future__ import annotations

import math
import random
from typing import Literal, get_args

Arrivals = Literal["poisson", "constant"]
ARRIVALS: tuple[str, ...] = get_args(Arrivals)


def arrival_offsets(
    rate_rps: float, duration_s: float, arrivals: Arrivals = "poisson", seed: int = 0
) -> list[float]:
    """The send times, in seconds since the rate's start, of every request within ``[0, duration_s)``:
    about ``rate_rps × duration_s`` of them, in increasing order. ``seed`` fixes a Poisson schedule."""
    if rate_rps <= 0 or duration_s <= 0:
        raise ValueError(f"rate and duration must be positive (got {rate_rps} req/s for {duration_s} s)")
    if arrivals == "constant":
        return [i / rate_rps for i in range(math.ceil(rate_rps * duration_s)) if i / rate_rps < duration_s]
    if arrivals != "poisson":
        raise ValueError(f"arrivals must be one of {', '.join(ARRIVALS)} (got {arrivals!r})")
    draws = random.Random(seed)
    offsets: list[float] = []
    t = draws.expovariate(rate_rps)
    while t < duration_s:
        offsets.append(t)
        t += draws.expovariate(rate_rps)
    return offsets
