"""benchmark/fuzz_hooks.py: ast.parse serialized (CPython 3.11's AST construction is not safe in two
threads at once), still parsing, and the hooks file given to every schemathesis process."""

from __future__ import annotations

import ast
import importlib
import threading
from pathlib import Path

import benchmark.fuzz as fuzz


def test_the_hooks_serialize_ast_parse_and_it_still_parses() -> None:
    hooks = importlib.import_module("benchmark.fuzz_hooks")
    assert ast.parse is hooks._serialized_parse
    importlib.reload(hooks)  # loading it twice does not wrap the wrapper
    assert ast.parse is hooks._serialized_parse and hooks._PARSE.__name__ == "parse"
    source = "f = lambda x: x + 1\n" * 200
    trees: list[ast.Module] = []
    threads = [threading.Thread(target=lambda: trees.append(ast.parse(source))) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(trees) == 8 and all(len(tree.body) == 200 for tree in trees)
    assert not hooks._LOCK.locked()


def test_every_schemathesis_process_gets_the_hooks_file() -> None:
    assert fuzz.HOOKS.is_file() and fuzz.HOOKS.name == "fuzz_hooks.py"
    assert '"SCHEMATHESIS_HOOKS": str(HOOKS)' in Path(fuzz.__file__).read_text()
