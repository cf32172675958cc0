"""Tables every service has: its event log, outbox, inbox and dead letters.

Guarantees that come from the schema itself, not from code paths:
- ``UNIQUE (stream_name, version)`` is the optimistic-concurrency check: two writers of
  the same version cannot both commit (no "check then insert").
- ``tx_id xid8 DEFAULT pg_current_xact_id()`` records the writing transaction, which the
  relay compares with the oldest running transaction so it never passes an uncommitted row.
- ``inbox`` has ``PRIMARY KEY (consumer, message_id)``: a redelivered message cannot be
  recorded twice, and the row commits in the same transaction as the effect.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Identity,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    PrimaryKeyConstraint,
    Table,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy.dialects.postgresql import JSONB, UUID

platform_metadata = MetaData()

events = Table(
    "events",
    platform_metadata,
    Column("global_position", BigInteger, Identity(always=True), primary_key=True),
    Column("event_id", UUID(as_uuid=True), nullable=False, unique=True),
    Column("stream_name", Text, nullable=False),
    Column("version", Integer, nullable=False),
    Column("type", Text, nullable=False),
    Column("data", JSONB, nullable=False),
    Column("metadata", JSONB, nullable=False),
    Column("tenant_id", UUID(as_uuid=True), nullable=False),
    Column("recorded_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    UniqueConstraint("stream_name", "version", name="events_stream_version_key"),
)

outbox = Table(
    "outbox",
    platform_metadata,
    Column("position", BigInteger, Identity(always=True), primary_key=True),
    # tx_id xid8 exists in the table (see PLATFORM_DDL) but is read only by the relay's SQL.
    Column("event_id", UUID(as_uuid=True), nullable=False, unique=True),
    Column("stream_name", Text, nullable=False),
    Column("subject", Text, nullable=False),
    Column("payload", LargeBinary, nullable=False),
    Column("traceparent", Text),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Index("outbox_stream_position", "stream_name", "position"),
)

inbox = Table(
    "inbox",
    platform_metadata,
    Column("consumer", Text, nullable=False),
    Column("message_id", Text, nullable=False),
    Column("result", JSONB),
    Column("processed_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    PrimaryKeyConstraint("consumer", "message_id", name="inbox_pkey"),
)

dead_letters = Table(
    "dead_letters",
    platform_metadata,
    Column("id", BigInteger, Identity(always=True), primary_key=True),
    Column("consumer", Text, nullable=False),
    Column("message_id", Text, nullable=False),
    Column("subject", Text, nullable=False),
    Column("payload", LargeBinary, nullable=False),
    Column("error", Text, nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("failed_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("replayed_at", DateTime(timezone=True)),
    Column("replay_error", Text),
    Column("tenant_id", UUID(as_uuid=True)),  # added by the security migration
    UniqueConstraint("consumer", "message_id", name="dead_letters_consumer_message_key"),
)


# The DDL, as SQL, because xid8 and the identity columns read more clearly here than through
# SQLAlchemy types; the Table objects above only build queries.
PLATFORM_DDL = """
CREATE TABLE events (
    global_position bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_id uuid NOT NULL UNIQUE,
    stream_name text NOT NULL,
    version integer NOT NULL CHECK (version >= 1),
    type text NOT NULL,
    data jsonb NOT NULL,
    metadata jsonb NOT NULL,
    tenant_id uuid NOT NULL,
    recorded_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT events_stream_version_key UNIQUE (stream_name, version)
);
CREATE INDEX events_tenant ON events (tenant_id, global_position);

CREATE TABLE outbox (
    position bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tx_id xid8 NOT NULL DEFAULT pg_current_xact_id(),
    event_id uuid NOT NULL UNIQUE,
    stream_name text NOT NULL,
    subject text NOT NULL,
    payload bytea NOT NULL,
    traceparent text,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX outbox_stream_position ON outbox (stream_name, position);

CREATE TABLE inbox (
    consumer text NOT NULL,
    message_id text NOT NULL,
    result jsonb,
    processed_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT inbox_pkey PRIMARY KEY (consumer, message_id)
);

CREATE TABLE dead_letters (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    consumer text NOT NULL,
    message_id text NOT NULL,
    subject text NOT NULL,
    payload bytea NOT NULL,
    error text NOT NULL,
    attempts integer NOT NULL,
    failed_at timestamptz NOT NULL DEFAULT now(),
    replayed_at timestamptz,
    replay_error text,
    CONSTRAINT dead_letters_consumer_message_key UNIQUE (consumer, message_id)
);
"""

PLATFORM_DROP = "DROP TABLE dead_letters, inbox, outbox, events;"


# The security migration of every service: tenant isolation for the event log and the
# dead letters (whose payloads name an organization's patients by id), and the audit log.
DEAD_LETTER_TENANT_DDL = """
ALTER TABLE dead_letters ADD COLUMN tenant_id uuid;
ALTER TABLE dead_letters ENABLE ROW LEVEL SECURITY;
ALTER TABLE dead_letters FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON dead_letters
    USING (tenant_id = NULLIF(current_setting('kinetic.tenant_id', true), '')::uuid)
    WITH CHECK (tenant_id IS NULL
                OR tenant_id = NULLIF(current_setting('kinetic.tenant_id', true), '')::uuid);
"""
