#!/usr/bin/env python3
"""Exports traces, metrics and logs with the real OpenTelemetry Python SDK and its OTLP
exporters, for strata's black-box tests (installed into .peers/venv by
scripts/install-peers.sh).

    otel_export.py --protocol grpc|http/protobuf --endpoint URL --service NAME [--spans N]
                   [--logs N] [--signals traces,metrics,logs] [--header K=V]...
                   [--compression none|gzip] [--timeout SECONDS] [--big-attribute BYTES]

--endpoint is the base URL (`http://127.0.0.1:4317` for gRPC, `http://127.0.0.1:4318` for
HTTP; `/v1/<signal>` is appended for HTTP). The resource is service.name=NAME,
service.instance.id=NAME-1, service.namespace=strata-test, k8s.namespace.name=strata-test,
k8s.pod.name=NAME-pod-0.

What is sent (the tests check that exactly this arrives):
  traces  N spans named `span-<i>`, in traces of up to 5 spans (the first of each trace is
          the root, the others its children), each with 10 attributes (`span.index` = i)
  metrics counter `test_requests` {route=/api, code=200} 3 and {code=500} 4, histogram
          `test_latency` (unit s, 4 observations), gauge `test_queue_depth` {queue=main} 42;
          exported by a forced flush and again at shutdown (cumulative temporality)
  logs    N records with body `log line <i> from NAME`, attribute `log.index` = i,
          severity INFO (even i) or WARN (odd i)

Every item is force-flushed, the providers are shut down, and the exit code is 1 if any
export returned FAILURE (the exporter's own error log goes to stderr). The last line on
stdout is a JSON summary: {"spans": N, "logs": N, "trace_ids": [...], "failures": [...]}.
"""

import argparse
import json
import sys
import time

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
from opentelemetry._logs import SeverityNumber
from opentelemetry.trace import SpanKind, set_span_in_context

SPANS_PER_TRACE = 5


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--protocol", choices=["grpc", "http/protobuf"], required=True)
    p.add_argument("--endpoint", required=True)
    p.add_argument("--service", required=True)
    p.add_argument("--spans", type=int, default=10)
    p.add_argument("--logs", type=int, default=10)
    p.add_argument("--signals", default="traces,metrics,logs")
    p.add_argument("--header", action="append", default=[], help="K=V, sent on every export")
    p.add_argument("--compression", choices=["none", "gzip"], default="none")
    p.add_argument("--timeout", type=float, default=10.0, help="per export, retries included")
    p.add_argument(
        "--big-attribute",
        type=int,
        default=0,
        help="give the first span an attribute of this many bytes (to exceed size limits)",
    )
    return p.parse_args()


def exporters(args):
    """(span, metric, log) exporter classes and their keyword arguments."""
    headers = {}
    for h in args.header:
        key, _, value = h.partition("=")
        # gRPC metadata keys must be lowercase; HTTP does not mind.
        headers[key.strip().lower()] = value.strip()
    base = args.endpoint.rstrip("/")
    if args.protocol == "grpc":
        import grpc
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
        from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter
        from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter

        compression = grpc.Compression.Gzip if args.compression == "gzip" else grpc.Compression.NoCompression
        common = dict(insecure=True, headers=headers or None, timeout=args.timeout, compression=compression)
        return (
            lambda: OTLPSpanExporter(endpoint=base, **common),
            lambda: OTLPMetricExporter(endpoint=base, **common),
            lambda: OTLPLogExporter(endpoint=base, **common),
        )
    from opentelemetry.exporter.otlp.proto.http import Compression
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
    from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter

    compression = Compression.Gzip if args.compression == "gzip" else Compression.NoCompression
    common = dict(headers=headers or None, timeout=args.timeout, compression=compression)
    return (
        lambda: OTLPSpanExporter(endpoint=f"{base}/v1/traces", **common),
        lambda: OTLPMetricExporter(endpoint=f"{base}/v1/metrics", **common),
        lambda: OTLPLogExporter(endpoint=f"{base}/v1/logs", **common),
    )


def record_results(exporter, what, failures):
    """Wraps `exporter.export` so a FAILURE result is remembered (the SDK's processors only
    log it)."""
    inner = exporter.export

    def export(*a, **kw):
        result = inner(*a, **kw)
        if getattr(result, "name", "") != "SUCCESS":
            failures.append(f"{what}: {result}")
        return result

    exporter.export = export
    return exporter


def send_traces(resource, make_exporter, args, failures):
    exporter = record_results(make_exporter(), "traces", failures)
    provider = TracerProvider(resource=resource)
    provider.add_span_processor(BatchSpanProcessor(exporter, max_export_batch_size=512))
    tracer = provider.get_tracer("strata.test.clients", "1.0.0")
    trace_ids = []
    root_ctx = None
    root = None
    for i in range(args.spans):
        first_of_trace = i % SPANS_PER_TRACE == 0
        if first_of_trace and root is not None:
            root.end()
        attributes = {
            "span.index": i,
            "http.request.method": "GET" if i % 2 == 0 else "POST",
            "http.route": f"/api/items/{i % 3}",
            "http.response.status_code": 200 if i % 4 else 500,
            "server.address": "orders.strata-test.svc",
            "server.port": 8080,
            "net.peer.name": "10.0.0.7",
            "retry": i % 2 == 1,
            "load.ratio": i / 10.0,
            "tags": ["a", "b", str(i)],
        }
        if i == 0 and args.big_attribute:
            attributes["big"] = "x" * args.big_attribute
        kind = SpanKind.SERVER if first_of_trace else SpanKind.CLIENT
        if first_of_trace:
            root = tracer.start_span(f"span-{i}", kind=kind, attributes=attributes)
            root_ctx = set_span_in_context(root)
            trace_ids.append(format(root.get_span_context().trace_id, "032x"))
        else:
            child = tracer.start_span(f"span-{i}", context=root_ctx, kind=kind, attributes=attributes)
            child.add_event("child.event", {"event.index": i})
            child.end()
    if root is not None:
        root.end()
    if not provider.force_flush(int(args.timeout * 1000) * 3):
        failures.append("traces: force_flush timed out")
    provider.shutdown()
    return trace_ids


def send_metrics(resource, make_exporter, args, failures):
    exporter = record_results(make_exporter(), "metrics", failures)
    # A long interval: exports happen only on the forced flush and at shutdown.
    reader = PeriodicExportingMetricReader(exporter, export_interval_millis=3_600_000)
    provider = MeterProvider(resource=resource, metric_readers=[reader])
    meter = provider.get_meter("strata.test.clients", "1.0.0")
    counter = meter.create_counter("test_requests", description="Requests handled.")
    histogram = meter.create_histogram("test_latency", unit="s", description="Request latency.")
    gauge = meter.create_gauge("test_queue_depth", description="Items waiting.")
    counter.add(3, {"route": "/api", "code": "200"})
    counter.add(4, {"route": "/api", "code": "500"})
    for v in (0.003, 0.02, 0.2, 1.5):
        histogram.record(v, {"route": "/api"})
    gauge.set(42, {"queue": "main"})
    if not provider.force_flush(int(args.timeout * 1000) * 3):
        failures.append("metrics: force_flush timed out")
    provider.shutdown()


def send_logs(resource, make_exporter, args, failures):
    exporter = record_results(make_exporter(), "logs", failures)
    provider = LoggerProvider(resource=resource)
    provider.add_log_record_processor(BatchLogRecordProcessor(exporter, max_export_batch_size=512))
    logger = provider.get_logger("strata.test.clients", "1.0.0")
    now = time.time_ns()
    for i in range(args.logs):
        warn = i % 2 == 1
        logger.emit(
            timestamp=now + i * 1000,
            observed_timestamp=now + i * 1000,
            severity_number=SeverityNumber.WARN if warn else SeverityNumber.INFO,
            severity_text="WARN" if warn else "INFO",
            body=f"log line {i} from {args.service}",
            attributes={"log.index": i, "user.id": f"u-{i % 7}"},
        )
    if not provider.force_flush(int(args.timeout * 1000) * 3):
        failures.append("logs: force_flush timed out")
    provider.shutdown()


def main():
    args = parse_args()
    resource = Resource.create(
        {
            "service.name": args.service,
            "service.namespace": "strata-test",
            "service.instance.id": f"{args.service}-1",
            "k8s.namespace.name": "strata-test",
            "k8s.pod.name": f"{args.service}-pod-0",
        }
    )
    make_span, make_metric, make_log = exporters(args)
    signals = {s.strip() for s in args.signals.split(",") if s.strip()}
    failures = []
    summary = {"spans": 0, "logs": 0, "trace_ids": []}
    if "traces" in signals:
        summary["trace_ids"] = send_traces(resource, make_span, args, failures)
        summary["spans"] = args.spans
    if "metrics" in signals:
        send_metrics(resource, make_metric, args, failures)
    if "logs" in signals:
        send_logs(resource, make_log, args, failures)
        summary["logs"] = args.logs
    summary["failures"] = failures
    print(json.dumps(summary), flush=True)
    if failures:
        print("export failed: " + "; ".join(failures), file=sys.stderr, flush=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
