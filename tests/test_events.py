"""Facts: shapes, tags, encodings, evolution."""

from __future__ import annotations

import datetime as dt

import msgspec
import pytest

from lifecycle import events as ev

SAMPLES: list[ev.Fact] = [
    ev.Requested(
        dialect="qualytics",
        operation="profile",
        name="n",
        containers=("a", "b"),
        params={"k": [1, "x"]},
        mode="rerun",
        original_run_id=2,
        root_run_id=1,
        job_version=3,
        build=True,
    ),
    ev.BuildStarted(image="i"),
    ev.BuildSucceeded(image="i", version=2),
    ev.BuildFailed(reason="r"),
    ev.ScheduleArmed(
        due_at=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
        run_id=7,
        skipped=(dt.datetime(2025, 12, 31, tzinfo=dt.UTC),),
    ),
    ev.ScheduleExpired(end=dt.datetime(2026, 1, 2, tzinfo=dt.UTC)),
    ev.SchedulePaused(by="ann"),
    ev.ScheduleResumed(by="bob"),
    ev.ResourcesRequested(tier="small"),
    ev.ResourcesAssigned(node="n1"),
    ev.PreparationStarted(),
    ev.ImagePullStarted(image="i"),
    ev.ExecutionStarted(),
    ev.LogRecorded(level="warning", stream="stderr", text="héllo\n"),
    ev.ResultStored(key="k", codec="pickle", size=3, sha256="ab"),
    ev.FinishingStarted(),
    ev.ExecutionSucceeded(cached_from=4),
    ev.ExecutionFailed(error="E", exit_code=2, traceback="tb"),
    ev.OutOfMemory(limit_bytes=10),
    ev.InfrastructureFailed(reason="engine_lost"),
    ev.StopRequested(by="ann"),
    ev.StoppingStarted(),
    ev.Stopped(reason="upstream_failed"),
    ev.ContainerAdded(name="('inc-3f2a', 7)", depends_on=("a/b",)),
    ev.Requeued(reason="worker_lost"),
]


def test_every_fact_is_sampled() -> None:
    assert {type(f).__name__ for f in SAMPLES} == set(ev.fact_types())


@pytest.mark.parametrize("fact", SAMPLES, ids=lambda f: type(f).__name__)
def test_msgpack_round_trip(fact: ev.Fact) -> None:
    assert ev.decode_fact(ev.encode_fact(fact)) == fact


@pytest.mark.parametrize("fact", SAMPLES, ids=lambda f: type(f).__name__)
def test_json_envelope_round_trip_and_tag(fact: ev.Fact) -> None:
    record = ev.Recorded(
        stream="run-1",
        version=1,
        position=9,
        event_id=ev.new_event_id(),
        recorded_at=dt.datetime.now(dt.UTC),
        event=fact,  # type: ignore[arg-type]
    )
    line = ev.encode_recorded_json(record)
    assert ev.decode_recorded_json(line) == record
    assert msgspec.json.decode(line)["event"]["type"] == type(fact).__name__


def test_facts_are_frozen_and_keyword_only() -> None:
    with pytest.raises(AttributeError):
        ev.Stopped().reason = "x"  # type: ignore[misc]
    with pytest.raises(TypeError):
        ev.Stopped("user")  # type: ignore[call-arg]


def test_bulk_decode() -> None:
    data = msgspec.msgpack.encode(SAMPLES)
    assert ev.decode_facts(data) == SAMPLES


def test_event_ids_are_time_ordered_and_unique() -> None:
    ids = [ev.new_event_id() for _ in range(1000)]
    assert len(set(ids)) == 1000 and all(len(i) == 32 for i in ids)
    assert ids[0][:12] <= ids[-1][:12]


def test_event_ids_made_in_bulk_look_like_single_ones() -> None:
    before = ev.new_event_id()
    ids = ev.new_event_ids(500) + ev.new_event_ids(500)
    assert len(set(ids)) == 1000
    assert all(len(i) == 32 and int(i, 16) >= 0 for i in ids)
    assert before[:12] <= ids[0][:12] <= ids[-1][:12] <= ev.new_event_id()[:12]
    assert ev.new_event_ids(0) == []


def test_upcaster_reads_an_old_shape() -> None:
    old = msgspec.msgpack.encode({"type": "ResourcesAssigned", "host": "n7"})  # renamed field
    assert ev.decode_fact(old) == ev.ResourcesAssigned(node="")  # unknown field: ignored

    def rename(raw: dict[str, object]) -> dict[str, object]:
        if "host" in raw:
            raw = dict(raw)
            raw["node"] = raw.pop("host")
        return raw

    ev.register_upcaster("ResourcesAssigned", rename)
    try:
        assert ev.decode_fact(old) == ev.ResourcesAssigned(node="n7")
        new = ev.encode_fact(ev.ResourcesAssigned(node="n8"))
        assert ev.decode_fact(new) == ev.ResourcesAssigned(node="n8")  # current shape unchanged
        assert ev.decode_fact(ev.encode_fact(ev.Stopped())) == ev.Stopped()
    finally:
        ev._UPCASTERS.clear()


def test_unknown_fields_are_ignored_and_new_fields_default() -> None:
    data = msgspec.msgpack.encode({"type": "Stopped", "reason": "user", "added_later": 1})
    assert ev.decode_fact(data) == ev.Stopped(reason="user")
    assert ev.decode_fact(msgspec.msgpack.encode({"type": "Stopped"})) == ev.Stopped()
