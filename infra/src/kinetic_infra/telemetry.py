"""OpenTelemetry for every process: traces, metrics and structured logs.

One trace follows a request across HTTP (FastAPI instrumentation), the database
(SQLAlchemy instrumentation, plus a span around each event-store append, which goes
straight to asyncpg), the outbox (the W3C ``traceparent`` is stored with each event and
travels as the CloudEvents ``traceparent`` extension and NATS header), the consumer (its
span continues that trace) and Temporal (the SDK's tracing interceptor carries it into
workflows and activities).

Export: to the console by default, one JSON object per line (the stack runner sends each
process's output to its log file); to an OTLP/HTTP collector when
``OTEL_EXPORTER_OTLP_ENDPOINT`` is set. Logs are JSON lines carrying the trace and span id.
Nothing here records request bodies, query values or names: patient names never reach a
span or a log line.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from typing import Any

from opentelemetry import metrics, propagate, trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import ConsoleMetricExporter, PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter

_configured = False

tracer = trace.get_tracer("kinetic")
meter = metrics.get_meter("kinetic")

events_appended = meter.create_counter("kinetic.events.appended", unit="{event}",
                                       description="Events appended to the event store")
relay_published = meter.create_counter("kinetic.relay.published", unit="{event}",
                                       description="Events the outbox relay published")
relay_lag = meter.create_histogram("kinetic.relay.lag", unit="s",
                                   description="From commit to JetStream ack")
consumer_lag = meter.create_histogram("kinetic.consumer.lag", unit="s",
                                      description="From the event's time to its effect")
dead_letters = meter.create_counter("kinetic.consumer.dead_letters", unit="{message}",
                                    description="Messages parked after their last attempt")
workflows_started = meter.create_counter("kinetic.workflows.started", unit="{workflow}",
                                         description="Workflows started")


def _one_line(item: Any) -> str:
    # indent=None: the SDK's own serialisation already fits one line; parsing and dumping
    # it again cost a tenth of a booking API process's CPU.
    return str(item.to_json(indent=None)) + "\n"


def setup_telemetry(service: str, role: str) -> None:
    """Install the tracer and meter providers and JSON logging, once per process."""
    global _configured
    if _configured:
        return
    _configured = True
    resource = Resource.create({"service.name": f"kinetic-{service}",
                                "service.namespace": "kinetic", "kinetic.role": role})
    provider = TracerProvider(resource=resource)
    if os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT"):
        from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
        reader = PeriodicExportingMetricReader(OTLPMetricExporter())
    else:
        provider.add_span_processor(BatchSpanProcessor(
            ConsoleSpanExporter(out=sys.stdout, formatter=_one_line)))
        # The interval is OpenTelemetry's own OTEL_METRIC_EXPORT_INTERVAL (60 s by default).
        reader = PeriodicExportingMetricReader(
            ConsoleMetricExporter(out=sys.stdout, formatter=lambda m: _one_line(m)))
    trace.set_tracer_provider(provider)
    metrics.set_meter_provider(MeterProvider(resource=resource, metric_readers=[reader]))


class JsonLogFormatter(logging.Formatter):
    """One JSON object per line, with the current trace and span ids."""

    def __init__(self, service: str, role: str) -> None:
        super().__init__()
        self.service, self.role = service, role

    def format(self, record: logging.LogRecord) -> str:
        span = trace.get_current_span().get_span_context()
        entry = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S%z"),
            "level": record.levelname, "logger": record.name, "message": record.getMessage(),
            "service": self.service, "role": self.role,
        }
        if span.is_valid:
            entry["trace_id"] = format(span.trace_id, "032x")
            entry["span_id"] = format(span.span_id, "016x")
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry)


def setup_logging(service: str, role: str, level: str) -> None:
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(JsonLogFormatter(service, role))
    logging.basicConfig(level=level.upper(), handlers=[handler], force=True)


def current_traceparent() -> str | None:
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return carrier.get("traceparent")


def context_from(traceparent: str | None) -> Any:
    return propagate.extract({"traceparent": traceparent} if traceparent else {})
