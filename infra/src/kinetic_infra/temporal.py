"""Temporal client and worker helpers. Payloads use the pydantic data converter, so workflow
inputs are the same typed models the rest of the service uses."""

from __future__ import annotations

from temporalio.client import Client
from temporalio.contrib.opentelemetry import TracingInterceptor
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.runtime import MetricBuffer, Runtime, TelemetryConfig
from temporalio.worker import Worker

from kinetic_infra.service.definition import Runtime as ServiceRuntime


async def connect_client(address: str, namespace: str, runtime: Runtime | None = None
                         ) -> Client:
    # The tracing interceptor carries the trace into workflows and activities; workers built
    # from this client inherit it.
    return await Client.connect(address, namespace=namespace,
                                data_converter=pydantic_data_converter,
                                interceptors=[TracingInterceptor()],
                                runtime=runtime or Runtime.default())


async def temporal_client(runtime: ServiceRuntime) -> Client:
    """One client per process, created on first use."""
    client = runtime.extras.get("temporal_client")
    if client is None:
        client = await connect_client(runtime.settings.temporal_address,
                                      runtime.settings.temporal_namespace)
        runtime.extras["temporal_client"] = client
    return client


def sdk_metrics() -> tuple[Runtime, MetricBuffer]:
    """A Temporal runtime whose SDK metrics (workflows completed, failed, task latencies …)
    are buffered for ``temporalio.contrib.opentelemetry.MetricsExporter`` to hand to our
    OpenTelemetry meter provider."""
    buffer = MetricBuffer(10_000)
    return Runtime(telemetry=TelemetryConfig(metrics=buffer)), buffer


async def build_worker(runtime: ServiceRuntime, sdk_runtime: Runtime | None = None) -> Worker:
    definition = runtime.definition
    if sdk_runtime is not None:
        runtime.extras["temporal_client"] = await connect_client(
            runtime.settings.temporal_address, runtime.settings.temporal_namespace, sdk_runtime)
    return Worker(
        await temporal_client(runtime),
        task_queue=definition.task_queue,
        workflows=list(definition.workflows),
        activities=list(definition.activities(runtime)),
        max_concurrent_activities=runtime.settings.worker_max_concurrent_activities,
    )
