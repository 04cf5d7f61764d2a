"""``python -m scoring_bench.serve <service>``: serve one service of the registry.

This is what every container runs (its ``CMD``): it builds the argv with
:func:`scoring_bench.servers.command` from the settings in the environment, exactly as the
local supervisor does, and replaces itself with it (``exec``), so the real server is the
container's main process and receives ``docker stop``'s SIGTERM itself. A setting given to
a container (``SCORING_ASYNC_WORKERS=2``) therefore reaches the server as it does with
``make up``; a command frozen into a Dockerfile would ignore it.
"""

from __future__ import annotations

import os
import sys

from pydantic import ValidationError

from scoring_bench.servers import SERVICES, command, service
from scoring_bench.settings import Settings


def argv(name: str, settings: Settings | None = None) -> list[str]:
    """The argv that serves ``name`` (KeyError for an unknown service)."""
    return command(service(name), settings if settings is not None else Settings())


def main(args: list[str] | None = None) -> int:
    args = sys.argv[1:] if args is None else args
    names = ", ".join(s.name for s in SERVICES)
    if len(args) != 1 or args[0].startswith("-"):
        print(f"usage: python -m scoring_bench.serve SERVICE   (one of: {names})", file=sys.stderr)
        return 2
    try:
        cmd = argv(args[0])
    except KeyError as exc:
        print(exc.args[0], file=sys.stderr)
        return 2
    except ValidationError as exc:
        print(f"invalid settings:\n{exc}", file=sys.stderr)
        return 2
    print(f"serving {args[0]}: {' '.join(cmd)}", file=sys.stderr, flush=True)
    os.execv(cmd[0], cmd)
    return 1  # not reached: execv replaces this process or raises


if __name__ == "__main__":
    sys.exit(main())
