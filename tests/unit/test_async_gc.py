"""The async handler's garbage-collector tuning (SCORING_ASYNC_GC_THRESHOLD), applied once it started."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from scoring_bench.core.settings import Settings
from scoring_bench.service.gc_tuning import tune_gc


@pytest.fixture
def restored_gc() -> Iterator[None]:
    threshold, enabled = gc.get_threshold(), gc.isenabled()
    yield
    gc.unfreeze()
    gc.set_threshold(*threshold)
    gc.enable() if enabled else gc.disable()


@pytest.mark.usefixtures("restored_gc")
def test_the_start_up_objects_are_frozen_and_the_threshold_set() -> None:
    assert Settings().scoring_async_gc_threshold == 7_000
    older = gc.get_threshold()[1:]
    tune_gc(Settings(scoring_async_gc_threshold=5_000))
    assert gc.get_freeze_count() > 0
    assert gc.get_threshold() == (5_000, *older) and gc.isenabled()


@pytest.mark.usefixtures("restored_gc")
def test_zero_turns_automatic_collection_off() -> None:
    tune_gc(Settings(scoring_async_gc_threshold=0))
    assert not gc.isenabled()
