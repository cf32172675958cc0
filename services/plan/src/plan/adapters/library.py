"""The organization's additions to the exercise library (its own exercises, or its version
of a seeded one). The seed itself is code (``plan.domain.exercises``)."""

from __future__ import annotations

from sqlalchemy import Column, DateTime, MetaData, Table, Text
from sqlalchemy.dialects.postgresql import JSONB, UUID

metadata = MetaData()

exercises = Table(
    "exercises", metadata,
    Column("tenant_id", UUID(as_uuid=True), primary_key=True),
    Column("code", Text, primary_key=True),
    Column("exercise", JSONB, nullable=False),
    Column("added_by", UUID(as_uuid=True), nullable=False),
    Column("added_at", DateTime(timezone=True), nullable=False),
)
