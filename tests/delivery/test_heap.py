"""The long-lived heap frozen out of full collections (issue 22): when, and that
nothing is lost to it for good."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from engine.delivery import heap


@pytest.fixture(autouse=True)
def fresh_heap() -> Iterator[None]:
    heap.reset()
    yield
    heap.reset()


class _Node:
    def __init__(self) -> None:
        self.other: _Node | None = None


def _cycle() -> weakref.ref[_Node]:
    first, second = _Node(), _Node()
    first.other, second.other = second, first
    return weakref.ref(first)


def test_the_first_batch_of_a_run_freezes_and_its_next_batches_do_not() -> None:
    assert heap.after_batch(1, now=100.0)
    assert gc.get_freeze_count() > 0
    assert not heap.after_batch(1, now=100.5)
    assert not heap.after_batch(1, now=500.0)  # run 1 is in the frozen heap already


def test_a_new_run_freezes_again_once_the_interval_passed() -> None:
    assert heap.after_batch(1, now=100.0)
    assert not heap.after_batch(2, now=100.0 + heap.REFREEZE_SECONDS - 1)
    assert heap.after_batch(2, now=100.0 + heap.REFREEZE_SECONDS)
    assert not heap.after_batch(1, now=200.0) and not heap.after_batch(2, now=300.0)


def test_garbage_made_after_a_freeze_is_collected_as_before() -> None:
    heap.after_batch(1, now=100.0)
    dead = _cycle()
    gc.collect()
    assert dead() is None


def test_a_cycle_left_unreachable_in_the_frozen_heap_goes_at_the_next_freeze() -> None:
    kept = [_Node()]
    kept[0].other = _Node()
    kept[0].other.other = kept[0]
    alive = weakref.ref(kept[0])
    heap.after_batch(1, now=100.0)  # the cycle is frozen
    kept.clear()  # now unreachable, but frozen: a collection does not walk it
    gc.collect()
    assert alive() is not None
    assert heap.after_batch(2, now=100.0 + heap.REFREEZE_SECONDS)
    assert alive() is None
