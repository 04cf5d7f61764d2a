"""schemathesis hooks of ``make fuzz`` (benchmark/fuzz.py passes this file as SCHEMATHESIS_HOOKS).

``ast.parse`` serialized across threads. With ``--workers`` above 1, schemathesis's coverage phase
generates two operations' cases at once; hypothesis describes each filter lambda by parsing its module's
source (``hypothesis.internal.lambda_sources``), and CPython 3.11's AST construction keeps its recursion
depth in per-interpreter state, so two parses at once can fail with ``SystemError: AST constructor
recursion depth mismatch`` (python/cpython#106905). It showed up once the model APIs had two operations
with the same ``model_id`` query parameter (predict and predict_batch): both workers parsed the same
module for it at the same moment. A lock costs nothing measurable here (a parse is cached per module).
"""

from __future__ import annotations

import ast
import threading
from typing import Any

_LOCK = threading.Lock()
# CPython's own parse, also when this module is loaded again (its wrapper keeps it)
_PARSE = getattr(ast.parse, "unserialized", ast.parse)


def _serialized_parse(*args: Any, **kwargs: Any) -> Any:
    with _LOCK:
        return _PARSE(*args, **kwargs)


_serialized_parse.unserialized = _PARSE  # type: ignore[attr-defined]
ast.parse = _serialized_parse
