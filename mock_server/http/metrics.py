"""What a fake did, for Prometheus: ``GET /__mock/metrics`` in the text exposition format.

Request counts and durations come from the journal entries the pipeline writes (:class:`Metrics`
is one of its observers); everything else (renders, the image cache, the journal's size) is read
when the metrics are scraped, so the request path pays for none of it. Each app has its own
registry: tests build many apps in one process. ``prometheus_client`` is imported on the first
scrape, not when the fake starts.
"""

from __future__ import annotations

import math
import threading
from bisect import bisect_left
from collections import deque
from collections.abc import Iterable
from typing import TYPE_CHECKING

from ..controls.journal import Journal, JournalEntry
from ..engine.body import parse_json_body
from ..engine.service import ImageService
from ..errors import ApiError
from .pipeline import IMAGE_ROUTE

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry
    from prometheus_client.core import Metric

__all__ = ["Metrics"]

DURATION_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
OTHER = "other"
"""The ``route`` of paths the fake does not serve, the ``model`` of models it does not serve."""

_IMAGE_PREFIX = IMAGE_ROUTE + "/"
BATCH = 256
"""Requests counted together (a batch takes well under a millisecond)."""


class Metrics:
    """The metrics of one fake, fed by its journal entries (an observer of the pipeline).

    A request costs an append: entries are counted in batches (every :data:`BATCH` requests,
    and before each scrape) into plain counts per label tuple, one lock per batch. The
    ``prometheus_client`` metric families are built from those counts when scraped (its own
    counters and histograms cost about five times as much per request).
    """

    def __init__(self, service: ImageService, journal: Journal) -> None:
        self._service = service
        self._journal = journal
        self._registry: CollectorRegistry | None = None
        self._pending: deque[JournalEntry] = deque()
        self._lock = threading.Lock()
        self._cells: dict[tuple[str, int | None, str], list[float]] = {}
        """Per (route, status, model): count, seconds, then a count per duration bucket."""
        self._faults: dict[str, int] = {}
        self._models = {model.encode(): model for model in service.spec_set.models}

    def __call__(self, entry: JournalEntry) -> None:
        pending = self._pending
        pending.append(entry)
        if len(pending) >= BATCH:
            self.count_pending()

    def count_pending(self) -> None:
        """Count the entries received since the last count."""
        pending, cells, faults, model_of = self._pending, self._cells, self._faults, self._model
        width = 3 + len(DURATION_BUCKETS)
        with self._lock:
            while pending:
                entry = pending.popleft()
                path = entry.path
                if entry.is_generation:
                    # The pipeline names the served model; only other bodies are searched.
                    route, model = path.rstrip("/"), entry.served_model or model_of(entry.raw_body)
                elif path.startswith(_IMAGE_PREFIX):
                    route, model = IMAGE_ROUTE, ""
                else:
                    route, model = OTHER, ""
                key = (route, entry.status, model)
                cell = cells.get(key)
                if cell is None:
                    cell = cells[key] = [0.0] * width
                duration = entry.duration
                cell[0] += 1
                cell[1] += duration
                cell[2 + bisect_left(DURATION_BUCKETS, duration)] += 1
                if entry.fault is not None:
                    kind = _fault_kind(entry.fault)
                    faults[kind] = faults.get(kind, 0) + 1

    def _model(self, raw: bytes) -> str:
        """The model a body names: served, ``other``, or empty for none."""
        # Found without decoding when "model" occurs once as a key with a plain string value
        # naming a served model; otherwise decoded. (A body naming a model only in a nested
        # object is counted under that model: such a body is refused anyway.)
        if raw.count(b'"model"') == 1:
            key_end = raw.find(b'"model"') + 7
            if raw.startswith(b': "', key_end):
                start = key_end + 3
            elif raw.startswith(b':"', key_end):
                start = key_end + 2
            else:
                start = 0
            if start:
                model = self._models.get(raw[start : raw.find(b'"', start)])
                if model is not None:
                    return model
        # Decoded as the engine decodes (bounded depth: a hostile body must not fail the
        # request it came with).
        try:
            body = parse_json_body(raw)
        except ApiError:
            return ""
        named = body.get("model") if isinstance(body, dict) else None
        if not isinstance(named, str):
            return ""
        return named if named.encode("utf-8", "surrogatepass") in self._models else OTHER

    def snapshot(self) -> tuple[dict[tuple[str, int | None, str], list[float]], dict[str, int]]:
        """Copies of the request cells and the fault counts, every request counted."""
        self.count_pending()
        with self._lock:
            return {key: list(cell) for key, cell in self._cells.items()}, dict(self._faults)

    @property
    def registry(self) -> CollectorRegistry:
        """This fake's own registry, holding its collector."""
        if self._registry is None:
            from prometheus_client import CollectorRegistry

            registry = CollectorRegistry()
            registry.register(_Collector(self, self._service, self._journal))
            self._registry = registry
        return self._registry

    def exposition(self) -> tuple[bytes, str]:
        """The metrics in the Prometheus text format, and that format's media type."""
        from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

        return generate_latest(self.registry), CONTENT_TYPE_LATEST


def _fault_kind(fault: str) -> str:
    """``status`` (an error status), ``close``, ``truncate``, ``slow-body`` or ``delay``."""
    tokens = {token.strip().partition("=")[0] for token in fault.split(",")}
    for kind in ("close", "truncate", "slow-body"):
        if kind in tokens:
            return kind
    return "status" if "code" in tokens else "delay"


class _Collector:
    """Builds the metric families at scrape time: requests, faults, renders, cache, journal.

    A registry takes any object with ``collect()`` (without ``describe()`` it asks nothing at
    registration), so this needs no ``prometheus_client`` base class.
    """

    def __init__(self, metrics: Metrics, service: ImageService, journal: Journal) -> None:
        self.metrics = metrics
        self.service = service
        self.journal = journal

    def collect(self) -> Iterable[Metric]:
        from prometheus_client.core import (
            CounterMetricFamily,
            GaugeMetricFamily,
            HistogramMetricFamily,
        )

        cells, faults = self.metrics.snapshot()
        requests = CounterMetricFamily(
            "aimlapi_mock_requests",
            "Requests answered, by route (API path, /files, or other), status and model.",
            labels=["route", "status", "model"],
        )
        by_route: dict[str, list[float]] = {}
        for (route, status, model), cell in sorted(cells.items(), key=_sortable):
            shown = str(status) if status is not None else "closed"
            requests.add_metric([route, shown, model], cell[0])
            total = by_route.setdefault(route, [0.0] * len(cell))
            for index, value in enumerate(cell):
                total[index] += value
        yield requests
        durations = HistogramMetricFamily(
            "aimlapi_mock_request_duration_seconds",
            "Time from receiving a request to handing over its answer, by route.",
            labels=["route"],
        )
        for route, total in by_route.items():
            cumulative, buckets = 0.0, []
            for bound, count in zip((*DURATION_BUCKETS, math.inf), total[2:], strict=True):
                cumulative += count
                buckets.append(("+Inf" if bound == math.inf else repr(float(bound)), cumulative))
            durations.add_metric([route], buckets, total[1])
        yield durations
        injected = CounterMetricFamily(
            "aimlapi_mock_faults_injected",
            "Answers changed by a fault (Prefer header or scripted rule), by kind.",
            labels=["kind"],
        )
        for kind, count in sorted(faults.items()):
            injected.add_metric([kind], count)
        yield injected
        cache = self.service.cache
        yield CounterMetricFamily(
            "aimlapi_mock_image_renders", "Images rendered.", value=self.service.renders
        )
        yield CounterMetricFamily(
            "aimlapi_mock_image_cache_hits", "Image downloads served from the cache.", cache.hits
        )
        yield CounterMetricFamily(
            "aimlapi_mock_image_cache_misses", "Image lookups not in the cache.", cache.misses
        )
        yield GaugeMetricFamily(
            "aimlapi_mock_image_cache_bytes", "Bytes of rendered images kept.", cache.size_bytes
        )
        yield GaugeMetricFamily(
            "aimlapi_mock_image_cache_images", "Rendered images kept.", len(cache)
        )
        yield GaugeMetricFamily(
            "aimlapi_mock_journal_entries", "Requests the journal holds.", len(self.journal)
        )


def _sortable(item: tuple[tuple[str, int | None, str], list[float]]) -> tuple[str, int, str]:
    (route, status, model), _ = item
    return route, status if status is not None else 0, model
