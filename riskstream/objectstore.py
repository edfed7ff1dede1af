"""An in-memory S3-compatible object store for the embedded broker, with Kafka's time retention.

Tansu 0.6.0 keeps every produced batch as an object and lists every object of a partition on
each fetch, and it never deletes one (``retention.ms`` is ignored, DeleteRecords panics): on its
own memory storage a demo slows down within minutes and its memory grows without bound
(``bench/README.md``, "Soak"). Run on S3 storage against this store instead, the broker keeps
working as before while the store applies what Kafka's ``retention.ms`` would: a record batch of
a ``cleanup.policy=delete`` topic older than the retention is deleted, the newest batch of each
partition always kept (the broker reads its latest offset from it). Compacted topics (the state
changelogs) are kept whole, as a broker that cannot compact must.

It speaks the part of S3 that Tansu's object_store client uses: PUT (``If-None-Match: *`` and
``If-Match`` conditions), GET and HEAD (``If-None-Match``), DELETE, and ListObjectsV2 with a
prefix, answered from a sorted key index (a partition's listing costs what that partition
retains, not what the bucket holds). Objects live in this process's memory: a broker restart
keeps its log while the store runs; stopping the store loses it, like Tansu's memory storage.

Run: ``python -m riskstream.objectstore --port 9000 --retention-s 600``; the broker then takes
``s3://BUCKET/`` with ``AWS_ENDPOINT=http://127.0.0.1:9000`` (:class:`riskstream.broker.EmbeddedBroker`
with ``retention_s`` does both)."""

from __future__ import annotations

import argparse
import asyncio
import bisect
import hashlib
import itertools
import json
import logging
import re
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Final
from xml.sax.saxutils import escape

from aiohttp import web

log = logging.getLogger(__name__)

BATCH_KEY: Final = re.compile(r"^clusters/([^/]+)/topics/([^/]+)/partitions/(\d+)/records/(\d+)\.batch$")
META_KEY: Final = re.compile(r"^clusters/([^/]+)/meta\.json$")
COMMIT_KEY: Final = re.compile(
    r"^clusters/([^/]+)/groups/consumers/([^/]+)/offsets/([^/]+)/partitions/(\d+)\.json$"
)
GROUP_HOLD_S: Final = 3600.0
"""A consumer group that committed on a partition within this long holds every batch from its
committed offset on, however old: a worker that was down restarts where it left off."""
LIST_PAGE: Final = 1000
SWEEP_EVERY_S: Final = 5.0


@dataclass(slots=True)
class StoredObject:
    body: bytes
    etag: str
    modified_ns: int
    """Strictly increasing over the store: Tansu takes a partition's newest batch to be the one
    last modified, so two puts must never tie."""
    listed: str = ""
    """Its ``<Contents>`` entry, rendered once: the broker lists a partition on every fetch."""
    keys: frozenset[bytes] | set[bytes] | None = None
    """A compacted topic's batch: its record keys, read once (an unreadable one: empty, kept)."""


@dataclass
class Bucket:
    objects: dict[str, StoredObject] = field(default_factory=dict)
    keys: list[str] = field(default_factory=list)
    """Sorted: a prefix listing is a bisect and a slice."""

    def put(self, key: str, obj: StoredObject) -> None:
        obj.listed = (
            f"<Contents><Key>{escape(key)}</Key><LastModified>{_iso(obj.modified_ns)}</LastModified>"
            f"<ETag>{escape(obj.etag)}</ETag><Size>{len(obj.body)}</Size>"
            "<StorageClass>STANDARD</StorageClass></Contents>"
        )
        if key not in self.objects:
            bisect.insort(self.keys, key)
        self.objects[key] = obj

    def delete(self, key: str) -> bool:
        if self.objects.pop(key, None) is None:
            return False
        i = bisect.bisect_left(self.keys, key)
        del self.keys[i]
        return True

    def listing(self, prefix: str, after: str) -> tuple[list[str], bool]:
        start = bisect.bisect_right(self.keys, after) if after else bisect.bisect_left(self.keys, prefix)
        out: list[str] = []
        for key in self.keys[start : start + LIST_PAGE + 1]:
            if not key.startswith(prefix):
                break
            out.append(key)
        return out[:LIST_PAGE], len(out) > LIST_PAGE


class RetainingStore:
    """The buckets, the topics' cleanup policies (read from the broker's own ``meta.json``) and
    the retention sweep."""

    def __init__(self, retention_s: float) -> None:
        self.retention_s = retention_s
        self.buckets: dict[str, Bucket] = {}
        self.compacted: set[tuple[str, str]] = set()
        """(cluster, topic) of every topic created with ``cleanup.policy`` naming compact."""
        self.commits: dict[tuple[str, str, int], dict[str, tuple[int, int]]] = {}
        """(cluster, topic, partition) -> group -> (committed offset, when, ns)."""
        self.deleted_batches = 0
        self._last_ns = 0

    def bucket(self, name: str) -> Bucket:
        return self.buckets.setdefault(name, Bucket())

    def stamp(self, body: bytes) -> StoredObject:
        now = max(time.time_ns(), self._last_ns + 1000)
        self._last_ns = now
        return StoredObject(body, f'"{hashlib.md5(body, usedforsecurity=False).hexdigest()}"', now)

    def learn(self, key: str, body: bytes) -> None:
        """What the broker's own objects say about retention: topic policies, group commits."""
        if (commit := COMMIT_KEY.match(key)) is not None:
            try:
                offset = int(json.loads(body)["offset"])
            except (ValueError, KeyError, TypeError):
                return
            cluster, group, topic, partition = commit.groups()
            self.commits.setdefault((cluster, topic, int(partition)), {})[group] = (offset, time.time_ns())
            return
        match = META_KEY.match(key)
        if match is None:
            return
        try:
            topics = json.loads(body).get("topics", {})
        except (ValueError, AttributeError):
            return
        for name, meta in topics.items():
            configs = (meta.get("topic") or {}).get("configs") or []
            for config in configs:
                if config.get("name") == "cleanup.policy" and "compact" in str(config.get("value")):
                    self.compacted.add((match.group(1), name))

    def hold(self, partition: tuple[str, str, int], now_ns: int) -> int | None:
        """The lowest offset a recently committing group still needs, if any."""
        recent = [
            offset
            for offset, at_ns in self.commits.get(partition, {}).values()
            if now_ns - at_ns < GROUP_HOLD_S * 1e9
        ]
        return min(recent) if recent else None

    def sweep(self, now_ns: int | None = None) -> int:
        """Applies retention and compaction; returns how many batches went.

        Retention (``cleanup.policy=delete``): a batch goes when it is older than the retention,
        is not its partition's newest, and every recently committing group's offset is at or
        past the next batch (so it read all of it). Compaction (``compact``): a batch older than
        the retention goes when every key in it has a record in a later batch, so reading the
        changelog from its start still ends at every key's latest value. Batches are deleted
        whole, never rewritten: a compacted partition keeps at most one batch per live key."""
        now = now_ns if now_ns is not None else time.time_ns()
        cutoff = now - int(self.retention_s * 1e9)
        deleted = 0
        for bucket in self.buckets.values():
            batches: dict[tuple[str, str, int], list[tuple[int, str]]] = {}
            for key in bucket.keys:
                match = BATCH_KEY.match(key)
                if match is not None:
                    partition = (match.group(1), match.group(2), int(match.group(3)))
                    batches.setdefault(partition, []).append((int(match.group(4)), key))
            for partition, ordered in batches.items():
                if partition[:2] in self.compacted:
                    deleted += self._compact(bucket, ordered, cutoff)
                else:
                    deleted += self._expire(bucket, ordered, cutoff, self.hold(partition, now))
        self.deleted_batches += deleted
        return deleted

    @staticmethod
    def _expire(bucket: Bucket, ordered: list[tuple[int, str]], cutoff: int, hold: int | None) -> int:
        deleted = 0
        for (_, key), (next_offset, _) in itertools.pairwise(ordered):
            if bucket.objects[key].modified_ns >= cutoff or (hold is not None and next_offset > hold):
                break
            bucket.delete(key)
            deleted += 1
        return deleted

    @staticmethod
    def _compact(bucket: Bucket, ordered: list[tuple[int, str]], cutoff: int) -> int:
        later: set[bytes] = set()
        doomed: list[str] = []
        for _, key in reversed(ordered):
            obj = bucket.objects[key]
            if obj.keys is None:
                obj.keys = batch_keys(obj.body) or frozenset()
            keys = obj.keys
            if obj.modified_ns < cutoff and keys and keys <= later:
                doomed.append(key)
            later |= keys
        for key in doomed:
            bucket.delete(key)
        return len(doomed)


def _varint(data: bytes, at: int) -> tuple[int, int]:
    """A zig-zag varint of the Kafka record format at ``at``: (value, next position)."""
    shift = raw = 0
    while True:
        byte = data[at]
        at += 1
        raw |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return (raw >> 1) ^ -(raw & 1), at
        shift += 7


RECORDS_AT: Final = 61
"""Where a v2 record batch's records start (after its fixed header)."""


def batch_keys(body: bytes) -> set[bytes] | None:
    """The record keys of a Kafka v2 record batch as the broker stores it; None when it cannot
    be read without decompressing (it is then kept)."""
    if len(body) < RECORDS_AT or body[16] != 2 or int.from_bytes(body[21:23], "big") & 0x07:
        return None
    count = int.from_bytes(body[57:61], "big", signed=True)
    keys: set[bytes] = set()
    at = RECORDS_AT
    try:
        for _ in range(count):
            length, at = _varint(body, at)
            end = at + length
            at += 1
            _, at = _varint(body, at)
            _, at = _varint(body, at)
            key_length, at = _varint(body, at)
            keys.add(body[at : at + key_length] if key_length >= 0 else b"")
            at = end
    except IndexError:
        return None
    return keys


def _iso(ns: int) -> str:
    return datetime.fromtimestamp(ns / 1e9, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _http_date(ns: int) -> str:
    return format_datetime(datetime.fromtimestamp(ns / 1e9, UTC), usegmt=True)


def _headers(obj: StoredObject) -> dict[str, str]:
    return {
        "ETag": obj.etag,
        "Last-Modified": _http_date(obj.modified_ns),
        "Content-Length": str(len(obj.body)),
    }


def _error(status: int, code: str) -> web.Response:
    body = f'<?xml version="1.0" encoding="UTF-8"?><Error><Code>{code}</Code></Error>'
    return web.Response(status=status, text=body, content_type="application/xml")


class S3Handler:
    """Maps the S3 requests Tansu makes onto :class:`RetainingStore`."""

    def __init__(self, store: RetainingStore) -> None:
        self.store = store

    async def __call__(self, request: web.BaseRequest) -> web.StreamResponse:
        bucket_name, _, key = request.path.lstrip("/").partition("/")
        if not bucket_name:
            return _error(400, "InvalidBucketName")
        bucket = self.store.bucket(bucket_name)
        if request.method == "GET" and not key:
            return self._list(bucket_name, bucket, request)
        if request.method == "PUT":
            return await self._put(bucket, key, request)
        obj = bucket.objects.get(key)
        if request.method in ("GET", "HEAD"):
            if obj is None:
                return _error(404, "NoSuchKey")
            if request.headers.get("If-None-Match") == obj.etag:
                return web.Response(status=304, headers={"ETag": obj.etag})
            if_match = request.headers.get("If-Match")
            if if_match is not None and if_match != obj.etag:
                return _error(412, "PreconditionFailed")
            headers = _headers(obj)
            if request.method == "HEAD":
                return web.Response(status=200, headers=headers)
            del headers["Content-Length"]
            return web.Response(status=200, body=obj.body, headers=headers)
        if request.method == "DELETE":
            bucket.delete(key)
            return web.Response(status=204)
        return _error(405, "MethodNotAllowed")

    async def _put(self, bucket: Bucket, key: str, request: web.BaseRequest) -> web.Response:
        if not key:
            return web.Response(status=200)
        existing = bucket.objects.get(key)
        if request.headers.get("If-None-Match") == "*" and existing is not None:
            return _error(412, "PreconditionFailed")
        if_match = request.headers.get("If-Match")
        if if_match is not None and (existing is None or existing.etag != if_match):
            return _error(412, "PreconditionFailed")
        body = await request.read()
        obj = self.store.stamp(body)
        bucket.put(key, obj)
        self.store.learn(key, body)
        return web.Response(status=200, headers={"ETag": obj.etag})

    def _list(self, name: str, bucket: Bucket, request: web.BaseRequest) -> web.Response:
        prefix = request.query.get("prefix", "")
        after = request.query.get("continuation-token") or request.query.get("start-after", "")
        keys, truncated = bucket.listing(prefix, after)
        parts = [
            '<?xml version="1.0" encoding="UTF-8"?>',
            '<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">',
            f"<Name>{escape(name)}</Name><Prefix>{escape(prefix)}</Prefix>",
            f"<KeyCount>{len(keys)}</KeyCount><MaxKeys>{LIST_PAGE}</MaxKeys>",
            f"<IsTruncated>{'true' if truncated else 'false'}</IsTruncated>",
        ]
        objects = bucket.objects
        parts.extend(objects[key].listed for key in keys)
        if truncated:
            parts.append(f"<NextContinuationToken>{escape(keys[-1])}</NextContinuationToken>")
        parts.append("</ListBucketResult>")
        return web.Response(status=200, text="".join(parts), content_type="application/xml")


async def _sweeper(store: RetainingStore) -> None:
    while True:
        await asyncio.sleep(SWEEP_EVERY_S)
        deleted = store.sweep()
        if deleted:
            log.info("retention: %d batches deleted (%d in all)", deleted, store.deleted_batches)


async def serve(port: int, retention_s: float) -> None:
    store = RetainingStore(retention_s)
    server = web.Server(S3Handler(store), access_log=None)
    runner = web.ServerRunner(server)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    log.info("object store on 127.0.0.1:%d, retention %.0f s", port, retention_s)
    try:
        await _sweeper(store)
    finally:
        await runner.cleanup()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m riskstream.objectstore", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--retention-s", type=float, default=600.0, help="Kafka's retention.ms, in seconds")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    asyncio.run(serve(args.port, args.retention_s))


if __name__ == "__main__":
    main()
