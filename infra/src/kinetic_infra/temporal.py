"""Temporal client and worker helpers. Payloads use the pydantic data converter, so workflow
inputs are the same typed models the rest of the service uses."""

from __future__ import annotations

from temporalio.client import Client
from temporalio.contrib.opentelemetry import TracingInterceptor
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Worker

from kinetic_infra.service.definition import Runtime


async def connect_client(address: str, namespace: str) -> Client:
    # The tracing interceptor carries the trace into workflows and activities; workers built
    # from this client inherit it.
    return await Client.connect(address, namespace=namespace,
                                data_converter=pydantic_data_converter,
                                interceptors=[TracingInterceptor()])


async def temporal_client(runtime: Runtime) -> Client:
    """One client per process, created on first use."""
    client = runtime.extras.get("temporal_client")
    if client is None:
        client = await connect_client(runtime.settings.temporal_address,
                                      runtime.settings.temporal_namespace)
        runtime.extras["temporal_client"] = client
    return client


async def build_worker(runtime: Runtime) -> Worker:
    definition = runtime.definition
    return Worker(
        await temporal_client(runtime),
        task_queue=definition.task_queue,
        workflows=list(definition.workflows),
        activities=list(definition.activities(runtime)),
    )
