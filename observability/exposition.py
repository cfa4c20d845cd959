"""``/metrics`` in Prometheus' text format, from the Redis-kept counters and histograms and
the registered gauge sources (prometheus_client's exposition, a collector of our own)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily

from . import metrics

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class _Collector:
    def collect(self):
        snap = metrics.snapshot()
        for metric in metrics.COUNTERS:
            family = CounterMetricFamily(metric.name, metric.help, labels=list(metric.labels))
            for labels, value in sorted(snap.counters[metric.name].items()):
                family.add_metric(list(labels), value)
            yield family
        for metric in metrics.HISTOGRAMS:
            family = HistogramMetricFamily(metric.name, metric.help, labels=list(metric.labels))
            for labels, (buckets, total, _count) in sorted(snap.histograms[metric.name].items()):
                family.add_metric(list(labels), buckets, total)
            yield family
        for gauge in metrics.gauges():
            family = GaugeMetricFamily(gauge.name, gauge.help, labels=list(gauge.labels))
            for labels, value in gauge.samples:
                family.add_metric(list(labels), value)
            yield family


def render() -> bytes:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Collector())
    return generate_latest(registry)
