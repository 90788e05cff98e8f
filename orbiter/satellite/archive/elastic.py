"""Cluster events into Elasticsearch daily indices, through a durable spool.

Each event is one document in `<prefix>-YYYY.MM.DD` (its UTC date) with a
deterministic `_id`, sent with elasticsearch-py's async bulk helper as a
`create`: a document already there answers 409, which counts as delivered, so
a re-sent batch neither duplicates nor double-counts. Per item: 2xx/409
delivered; 429 or 5xx re-send the batch later (the created ones then answer
409); any other 4xx (a mapping conflict: the document itself is bad) is
dropped and counted. The index template for `<prefix>-*` is put before the
first batch is sent, and again until that succeeds.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from orbiter.satellite.archive.config import ElasticConfig
from orbiter.satellite.archive.events import (
    ArchiveEvent,
    document,
    document_id,
    index_name,
    index_template,
)
from orbiter.satellite.archive.shipper import ArchiveMetrics, Delivery, Shipper
from orbiter.satellite.archive.spool import Batch, BatchSpool

log = logging.getLogger("orbiter.archive")

SINK = "elasticsearch"


class EventEncoder:
    """Events → NDJSON batches of {_index, _id, _source}, ids fixed by the spool seq."""

    def __init__(self, prefix: str, batch_size: int) -> None:
        self.prefix = prefix
        self.batch_size = batch_size

    def __call__(self, events: list[ArchiveEvent], first_seq: int) -> list[tuple[bytes, int]]:
        out = []
        n = self.batch_size
        for b, start in enumerate(range(0, len(events), n)):
            chunk = events[start : start + n]
            lines = []
            for pos, event in enumerate(chunk):
                doc = document(event)
                action = {
                    "_index": index_name(self.prefix, event.time),
                    "_id": document_id(doc, first_seq + b, pos),
                    "_source": doc,
                }
                lines.append(json.dumps(action, separators=(",", ":"), ensure_ascii=False))
            out.append(("\n".join(lines).encode() + b"\n", len(chunk)))
        return out


def judge_items(items: Sequence[tuple[bool, dict[str, Any]]]) -> Delivery:
    """A bulk answer's per-item results → what to do with the batch."""
    delivered = dropped = 0
    retry = ""
    refused = ""
    for _, item in items:
        result = next(iter(item.values()))
        status = int(result.get("status", 0))
        if 200 <= status < 300 or status == 409:
            delivered += 1
        elif status == 429 or status >= 500 or status == 0:
            retry = retry or f"item status {status}: {result.get('error')}"
        else:
            dropped += 1
            refused = refused or f"item status {status}: {result.get('error')}"
    if retry:
        return Delivery(retry=True, detail=retry)
    return Delivery(False, delivered, dropped, refused)


class ElasticTransport:
    """AsyncElasticsearch + helpers.async_streaming_bulk; the client's own retries are off."""

    def __init__(self, cfg: ElasticConfig) -> None:
        self.cfg = cfg
        self._client: Any = None
        self._template_put = False

    async def start(self) -> None:
        from elasticsearch import AsyncElasticsearch

        auth: dict[str, Any] = {}
        if self.cfg.api_key:
            auth["api_key"] = self.cfg.api_key
        elif self.cfg.username:
            auth["basic_auth"] = (self.cfg.username, self.cfg.password)
        # Retries are the shipper's (with backoff and the spool behind it), not the client's.
        self._client = AsyncElasticsearch(
            list(self.cfg.hosts),
            request_timeout=self.cfg.timeout,
            max_retries=0,
            retry_on_timeout=False,
            **auth,
        )

    async def _put_template(self) -> None:
        """Put the index template; a refusal (4xx) is logged and the events flow anyway."""
        from elasticsearch import ApiError

        body = index_template(self.cfg.index_prefix)
        try:
            await self._client.indices.put_index_template(
                name=self.cfg.index_prefix,
                index_patterns=body["index_patterns"],
                template=body["template"],
                meta=body["_meta"],
            )
        except ApiError as e:
            if e.meta.status == 429 or e.meta.status >= 500:
                raise
            log.error(
                "archive elasticsearch: the index template %s was refused (HTTP %d: %s); "
                "indices get dynamic mappings",
                self.cfg.index_prefix,
                e.meta.status,
                e.message,
            )
        self._template_put = True

    async def send(self, batch: Batch) -> Delivery:
        from elasticsearch import ApiError
        from elasticsearch.helpers import async_streaming_bulk

        try:
            if not self._template_put:
                await self._put_template()
            actions = []
            for line in batch.payload.splitlines():
                action = json.loads(line)
                action["_op_type"] = "create"
                actions.append(action)
            results = [
                r
                async for r in async_streaming_bulk(
                    self._client,
                    actions,
                    chunk_size=max(len(actions), 1),
                    max_chunk_bytes=1 << 30,
                    raise_on_error=False,
                    raise_on_exception=True,
                    max_retries=0,
                )
            ]
        except ApiError as e:
            status = e.meta.status
            if status == 429 or status >= 500 or status in (401, 403, 404):
                return Delivery(retry=True, detail=f"HTTP {status}: {e.message}")
            return Delivery(False, 0, batch.count, f"HTTP {status}: {e.message}")
        return judge_items(results)

    async def close(self) -> None:
        if self._client is not None:
            await self._client.close()


class ElasticSink:
    """The event archive: `offer_event` only queues; `start()` / `stop()` run the loops."""

    def __init__(
        self,
        cfg: ElasticConfig,
        spool_dir: Path,
        max_bytes: int,
        metrics: ArchiveMetrics,
        max_buffer: int = 100_000,
    ) -> None:
        self.cfg = cfg
        self.shipper: Shipper[ArchiveEvent] = Shipper(
            SINK,
            "events",
            BatchSpool(Path(spool_dir), max_bytes),
            ElasticTransport(cfg),
            EventEncoder(cfg.index_prefix, cfg.batch_size),
            metrics,
            batch_size=cfg.batch_size,
            flush_interval=cfg.flush_interval,
            max_buffer=max_buffer,
            send_timeout=cfg.timeout * 2 + 5.0,
        )

    def offer_event(self, event: ArchiveEvent) -> None:
        self.shipper.put(event, 1)

    async def start(self) -> None:
        await self.shipper.start()

    async def stop(self) -> None:
        await self.shipper.stop()

    async def flush(self) -> None:
        await self.shipper.flush()
