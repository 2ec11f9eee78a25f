"""At-least-once offset release: never past an order whose output is not yet durable."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
from orderpipeline.core.offsets import Batch, OffsetTracker

from tests.kafka_fakes import FakeMessage, as_messages


def test_a_batch_is_released_only_after_all_its_outputs_are_delivered() -> None:
    tracker = OffsetTracker()
    batch = tracker.open(as_messages([FakeMessage("orders", 0, 5), FakeMessage("orders", 0, 6)]))
    batch.add(2)
    tracker.close(batch)
    assert tracker.release()[0] == []
    tracker.on_delivery(batch, None)
    assert tracker.release()[0] == []
    tracker.on_delivery(batch, None)
    offsets, _ = tracker.release()
    assert [(tp.topic, tp.partition, tp.offset) for tp in offsets] == [("orders", 0, 7)]
    assert tracker.idle


def test_a_newer_finished_batch_waits_for_an_older_unfinished_one() -> None:
    tracker = OffsetTracker()
    old = tracker.open(as_messages([FakeMessage("orders", 0, 1)]))
    old.add()
    tracker.close(old)
    new = tracker.open(as_messages([FakeMessage("orders", 0, 2)]))
    tracker.close(new)
    assert tracker.release()[0] == []
    tracker.on_delivery(old, None)
    assert [tp.offset for tp in tracker.release()[0]] == [3]


def test_nothing_is_released_after_a_delivery_failure() -> None:
    tracker = OffsetTracker()
    batch = tracker.open(as_messages([FakeMessage("orders", 0, 1)]))
    batch.add()
    tracker.close(batch)
    # Any error object will do: the tracker only records that one came.
    tracker.on_delivery(batch, object())  # type: ignore[arg-type]
    assert tracker.release() == ([], [])
    assert tracker.failure is not None


@given(
    sizes=st.lists(st.integers(min_value=1, max_value=5), min_size=1, max_size=20),
    data=st.data(),
)
def test_released_offsets_never_pass_the_lowest_unfinished_message(
    sizes: list[int], data: st.DataObject
) -> None:
    tracker = OffsetTracker()
    next_offset = {0: 0, 1: 0}
    outstanding: list[tuple[Batch, list[tuple[int, int]]]] = []
    for size in sizes:
        messages: list[FakeMessage] = []
        for _ in range(size):
            p = data.draw(st.sampled_from([0, 1]))
            messages.append(FakeMessage("orders", p, next_offset[p]))
            next_offset[p] += 1
        batch = tracker.open(as_messages(messages))
        batch.add(size)  # one output per message
        tracker.close(batch)
        outstanding.append((batch, [(m._partition, m._offset) for m in messages] * 1))
    pending = [(b, m) for b, ms in outstanding for m in ms]
    order = data.draw(st.permutations(range(len(pending))))
    done: set[tuple[int, int]] = set()
    committed = {0: 0, 1: 0}
    for index in order:
        batch, msg = pending[index]
        tracker.on_delivery(batch, None)
        done.add(msg)
        for tp in tracker.release()[0]:
            committed[tp.partition] = tp.offset
        for p in (0, 1):
            # Everything below the committed offset has its output delivered.
            assert all((p, o) in done for o in range(committed[p]))
    assert committed == next_offset
