"""plan_tick and the sensor cursor: each change of a landed file gets a run key of its own."""

import json

import dagster as dg
import pytest

from skinseg_assets.pixels.batches import BatchRequest, Seen, batch_key, plan_tick, read_cursor, same_version, write_cursor

V1 = "size:14:mtime_ns:1000:ctime_ns:5000"
V2 = "size:20:mtime_ns:1100:ctime_ns:6000"


def landed(identity: str, batch: str = "day-1.txt") -> BatchRequest:
    return BatchRequest(batch=batch, identity=identity, uri=f"/landing/{batch}")


def test_an_identity_seen_before_still_gets_a_new_run_key():
    # e.g. a landing zone rolled back to a snapshot, or a file system whose change time can be set
    seen, keys = {}, []
    for identity in [V1, V2, V1]:
        plan = plan_tick([landed(identity)], seen, set(), 25)
        assert len(plan.requests) == 1
        keys.append(plan.requests[0].run_key)
        seen = plan.cursor
    assert keys == [f"day-1.txt#1@{V1}", f"day-1.txt#2@{V2}", f"day-1.txt#3@{V1}"]
    again = plan_tick([landed(V1)], seen, {"day-1.txt"}, 25)
    assert again.requests == [] and again.cursor == seen


def test_a_file_gone_and_landed_again_continues_its_count():
    seen = plan_tick([landed(V1)], {}, set(), 25).cursor
    gone = plan_tick([], seen, {"day-1.txt"}, 25)
    assert gone.cursor == seen  # the entry stays
    back = plan_tick([landed(V2)], gone.cursor, {"day-1.txt"}, 25)
    assert back.requests[0].run_key == f"day-1.txt#2@{V2}"


def test_files_left_for_a_later_tick_do_not_use_up_a_count():
    plan = plan_tick([landed(V1, "a.txt"), landed(V1, "b.txt")], {}, set(), 1)
    assert [request.run_key for request in plan.requests] == [f"a.txt#1@{V1}"]
    assert plan.waiting == 1 and "b.txt" not in plan.cursor
    later = plan_tick([landed(V1, "a.txt"), landed(V1, "b.txt")], plan.cursor, {"a.txt"}, 1)
    assert [request.run_key for request in later.requests] == [f"b.txt#1@{V1}"]


def test_the_cursor_round_trips_and_reads_the_older_form():
    seen = {"day-1.txt": Seen(identity=V1, requests=3)}
    assert read_cursor(write_cursor(seen)) == seen
    assert read_cursor(None) == {} and read_cursor("") == {}
    older = json.dumps({"day-1.txt": "size:14:mtime_ns:1000", "cloud.txt": "generation:7"})
    assert read_cursor(older) == {
        "day-1.txt": Seen(identity="size:14:mtime_ns:1000", requests=1),
        "cloud.txt": Seen(identity="generation:7", requests=1),
    }


def test_an_older_cursor_entry_is_taken_over_without_a_request():
    older = read_cursor(json.dumps({"day-1.txt": "size:14:mtime_ns:1000"}))
    plan = plan_tick([landed(V1)], older, {"day-1.txt"}, 25)
    assert plan.requests == []
    assert plan.cursor == {"day-1.txt": Seen(identity=V1, requests=1)}
    changed = plan_tick([landed(V2)], plan.cursor, {"day-1.txt"}, 25)
    assert [request.run_key for request in changed.requests] == [f"day-1.txt#2@{V2}"]


@pytest.mark.parametrize(
    ("seen", "identity", "same"),
    [
        (V1, V1, True),
        (V1, V2, False),
        ("size:14:mtime_ns:1000", V1, True),  # written before the change time was part of it
        ("size:14:mtime_ns:100", V1, False),  # a prefix of the number is not the same mtime
        ("size:14:mtime_ns:1000:ctime_ns:4000", V1, False),
        ("generation:7", "generation:7", True),
        ("generation:7", "generation:8", False),
    ],
)
def test_same_version(seen, identity, same):
    assert same_version(seen, identity) is same


@pytest.mark.parametrize("name", ["day...1.txt", "day....1.txt", "...day-1.txt"])
def test_a_name_holding_dagsters_partition_range_separator_gets_a_hashed_key(name):
    key = batch_key(name)
    assert "..." not in key and key != name and key.startswith("day")
    assert batch_key(name) == key  # the same in every tick
    dg.StaticPartitionsDefinition([key])  # Dagster's own check of a key's characters accepts it
    with pytest.raises(dg.DagsterInvalidDefinitionError):
        dg.StaticPartitionsDefinition([name])


def test_a_clean_name_is_its_own_key():
    assert batch_key("day-1.txt") == "day-1.txt"
    assert batch_key("day..1.txt") == "day..1.txt"
