"""The embedded broker's retaining object store: what its retention deletes and what it keeps."""

from __future__ import annotations

import itertools
import json

from aiokafka.record.default_records import DefaultRecordBatchBuilder

from riskstream.objectstore import LIST_PAGE, Bucket, RetainingStore, batch_keys

S = 1_000_000_000
PREFIX = "clusters/c/topics/{topic}/partitions/{p:010d}/records/"


def put_batches(store: RetainingStore, topic: str, offsets: list[int], p: int = 0) -> list[str]:
    keys = []
    for offset in offsets:
        key = PREFIX.format(topic=topic, p=p) + f"{offset:020d}.batch"
        store.bucket("b").put(key, store.stamp(b"batch"))
        keys.append(key)
    return keys


def put_meta(store: RetainingStore, topics: dict[str, str]) -> None:
    body = json.dumps(
        {
            "topics": {
                name: {"id": name, "topic": {"configs": [{"name": "cleanup.policy", "value": policy}]}}
                for name, policy in topics.items()
            }
        }
    ).encode()
    store.bucket("b").put("clusters/c/meta.json", store.stamp(body))
    store.learn("clusters/c/meta.json", body)


def commit(store: RetainingStore, group: str, topic: str, offset: int, p: int = 0) -> None:
    key = f"clusters/c/groups/consumers/{group}/offsets/{topic}/partitions/{p:010d}.json"
    body = json.dumps({"offset": offset, "leader_epoch": -1, "metadata": None}).encode()
    store.bucket("b").put(key, store.stamp(body))
    store.learn(key, body)


def left(store: RetainingStore, topic: str, p: int = 0) -> list[int]:
    keys, _ = store.bucket("b").listing(PREFIX.format(topic=topic, p=p), "")
    return [int(k.rsplit("/", 1)[1][:20]) for k in keys]


def later(store: RetainingStore, s: float) -> int:
    return max(o.modified_ns for o in store.bucket("b").objects.values()) + int(s * S)


def test_batches_past_retention_go_and_the_newest_stays() -> None:
    store = RetainingStore(retention_s=30)
    put_batches(store, "market-data", [0, 5, 9, 14])
    assert store.sweep(later(store, 10)) == 0
    assert store.sweep(later(store, 31)) == 3
    assert left(store, "market-data") == [14]


def test_only_batches_older_than_the_retention_go() -> None:
    store = RetainingStore(retention_s=30)
    put_batches(store, "market-data", [0, 5])
    cut = later(store, 31)
    store._last_ns = cut - 20 * S
    put_batches(store, "market-data", [9, 14])
    store.sweep(cut)
    assert left(store, "market-data") == [9, 14]


def test_compacted_topics_are_kept_whole() -> None:
    store = RetainingStore(retention_s=30)
    put_meta(store, {"rs-account-state-changelog": "compact", "market-data": "delete"})
    put_batches(store, "rs-account-state-changelog", [0, 1, 2])
    put_batches(store, "market-data", [0, 1, 2])
    store.sweep(later(store, 60))
    assert left(store, "rs-account-state-changelog") == [0, 1, 2]
    assert left(store, "market-data") == [2]


def test_a_committing_group_holds_what_it_has_not_read() -> None:
    """Batch 5 (offsets 5-8) stays while the group's committed offset is 7; once it commits 9,
    batch 5 was read whole and goes."""
    store = RetainingStore(retention_s=30)
    put_batches(store, "trade-logs", [0, 5, 9, 14])
    commit(store, "rs", "trade-logs", 7)
    store.sweep(later(store, 60))
    assert left(store, "trade-logs") == [5, 9, 14]
    commit(store, "rs", "trade-logs", 9)
    store.sweep(later(store, 60))
    assert left(store, "trade-logs") == [9, 14]


def test_the_slowest_of_several_groups_holds() -> None:
    store = RetainingStore(retention_s=30)
    put_batches(store, "trade-logs", [0, 5, 9, 14])
    commit(store, "fast", "trade-logs", 14)
    commit(store, "slow", "trade-logs", 5)
    store.sweep(later(store, 60))
    assert left(store, "trade-logs") == [5, 9, 14]


def test_a_group_silent_for_an_hour_holds_nothing() -> None:
    store = RetainingStore(retention_s=30)
    put_batches(store, "trade-logs", [0, 5, 9, 14])
    commit(store, "gone", "trade-logs", 0)
    store.sweep(later(store, 3601))
    assert left(store, "trade-logs") == [14]


def test_a_listing_is_one_partition_in_pages() -> None:
    bucket = Bucket()
    store = RetainingStore(retention_s=30)
    for p in (0, 1):
        for offset in range(LIST_PAGE + 5):
            bucket.put(PREFIX.format(topic="t", p=p) + f"{offset:020d}.batch", store.stamp(b"x"))
    prefix = PREFIX.format(topic="t", p=1)
    first, more = bucket.listing(prefix, "")
    assert more and len(first) == LIST_PAGE and all(k.startswith(prefix) for k in first)
    rest, more = bucket.listing(prefix, first[-1])
    assert not more and len(rest) == 5
    assert first + rest == sorted(first + rest)


def test_modification_times_never_tie() -> None:
    store = RetainingStore(retention_s=30)
    stamps = [store.stamp(b"x").modified_ns for _ in range(1000)]
    assert all(b > a for a, b in itertools.pairwise(stamps))


def record_batch(keys: list[bytes | None], compression: int = 0) -> bytes:
    """A real Kafka v2 record batch, built by aiokafka's own encoder."""
    builder = DefaultRecordBatchBuilder(
        magic=2,
        compression_type=compression,
        is_transactional=0,
        producer_id=-1,
        producer_epoch=-1,
        base_sequence=-1,
        batch_size=1 << 20,
    )
    for i, key in enumerate(keys):
        builder.append(i, timestamp=1_700_000_000_000 + i, key=key, value=b"state" * 20, headers=[])
    return bytes(builder.build())


def test_batch_keys_reads_every_record_key() -> None:
    assert batch_keys(record_batch([b"ACC-1", b"ACC-2", b"ACC-1"])) == {b"ACC-1", b"ACC-2"}
    assert batch_keys(record_batch([None])) == {b""}
    assert batch_keys(record_batch([b"ACC-1"], compression=1)) is None
    assert batch_keys(b"short") is None


def put_changelog(store: RetainingStore, batches: list[list[bytes]], start: int = 0) -> None:
    for offset, keys in enumerate(batches, start):
        key = PREFIX.format(topic="rs-account-state-changelog", p=0) + f"{offset:020d}.batch"
        store.bucket("b").put(key, store.stamp(record_batch(list(keys))))


def test_compaction_drops_a_batch_only_once_every_key_in_it_is_written_again() -> None:
    store = RetainingStore(retention_s=30)
    put_meta(store, {"rs-account-state-changelog": "compact"})
    put_changelog(store, [[b"A", b"B"], [b"A"], [b"B", b"C"], [b"A"]])
    store.sweep(later(store, 60))
    # 0 (A, B): A again in 1 and 3, B in 2: goes. 1 (A): A in 3: goes. 2 (B, C) and 3 (A): the
    # latest of each key.
    assert left(store, "rs-account-state-changelog") == [2, 3]


def test_compaction_waits_for_the_retention() -> None:
    store = RetainingStore(retention_s=30)
    put_meta(store, {"rs-account-state-changelog": "compact"})
    put_changelog(store, [[b"A"], [b"A"]])
    store.sweep(later(store, 10))
    assert left(store, "rs-account-state-changelog") == [0, 1]


def test_compaction_keeps_a_batch_it_cannot_read() -> None:
    store = RetainingStore(retention_s=30)
    put_meta(store, {"rs-account-state-changelog": "compact"})
    key = PREFIX.format(topic="rs-account-state-changelog", p=0) + f"{0:020d}.batch"
    store.bucket("b").put(key, store.stamp(record_batch([b"A"], compression=1)))
    put_changelog(store, [[b"A"], [b"A"]], start=1)
    store.sweep(later(store, 60))
    assert left(store, "rs-account-state-changelog") == [0, 2]
