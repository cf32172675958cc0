"""Temporal client and worker helpers. Payloads use the pydantic data converter, so workflow
inputs are the same typed models the rest of the service uses."""

from __future__ import annotations

from temporalio.client import Client
from temporalio.contrib.opentelemetry import TracingInterceptor
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.runtime import MetricBuffer, Runtime, TelemetryConfig
from temporalio.worker import Worker
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

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


# Imported once per process, not once per workflow run: the sandbox otherwise re-imports
# every non-standard module a workflow module uses for each run it starts, and pydantic with
# the contracts costs enough CPU that 400 charges starting at once made each workflow task
# take a minute (past its 10 s timeout, so none finished). They are deterministic on import
# and hold no state a workflow could leak into another; the workflow modules themselves
# stay sandboxed.
PASSED_THROUGH = ("pydantic", "pydantic_core", "annotated_types", "typing_inspection",
                  "kinetic_contracts")


def workflow_runner(service: str) -> SandboxedWorkflowRunner:
    """The sandbox, with the libraries and the service's pure domain passed through."""
    return SandboxedWorkflowRunner(restrictions=SandboxRestrictions.default
                                   .with_passthrough_modules(*PASSED_THROUGH,
                                                             f"{service}.domain"))


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
        workflow_runner=workflow_runner(definition.name),
    )
