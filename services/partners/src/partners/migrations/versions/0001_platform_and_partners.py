"""Platform tables, partners, consents, deliveries and the dispatch queue; tenant isolation.

Revision ID: 0001
Revises:
"""

from kinetic_infra.db.migrations import execute_script
from kinetic_infra.db.schema import PLATFORM_DDL, PLATFORM_DROP
from kinetic_infra.db.security import security_downgrade, security_migration

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

TENANT_TABLES = ("partners", "partner_consents", "deliveries")


def upgrade() -> None:
    execute_script(PLATFORM_DDL)
    execute_script("""
    CREATE TABLE partners (
        partner_id uuid PRIMARY KEY,
        tenant_id uuid NOT NULL,
        name text NOT NULL,
        webhook_url text NOT NULL,
        event_types text[] NOT NULL,
        data_classes text[] NOT NULL,
        secret text NOT NULL,
        registered_at timestamptz NOT NULL,
        UNIQUE (tenant_id, name)
    );
    -- Booking's data-sharing consents, per patient and named partner (the latest wins).
    CREATE TABLE partner_consents (
        patient_id uuid NOT NULL,
        partner text NOT NULL,
        tenant_id uuid NOT NULL,
        granted boolean NOT NULL,
        recorded_at timestamptz NOT NULL,
        PRIMARY KEY (patient_id, partner)
    );
    -- The delivery log: one row per partner and event, kept after delivery (replay).
    CREATE TABLE deliveries (
        delivery_id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        tenant_id uuid NOT NULL,
        partner_id uuid NOT NULL,
        event_id uuid NOT NULL,
        event_type text NOT NULL,
        envelope jsonb NOT NULL,
        status text NOT NULL CHECK (status IN ('pending', 'retrying', 'delivered', 'dead')),
        attempts integer NOT NULL,
        next_attempt_at timestamptz NOT NULL,
        last_status integer,
        last_error text,
        created_at timestamptz NOT NULL,
        delivered_at timestamptz,
        UNIQUE (partner_id, event_id)
    );
    CREATE INDEX deliveries_partner ON deliveries (tenant_id, partner_id, delivery_id);
    -- Ids and due times only (no row-level security): see adapters/delivery.py.
    CREATE TABLE dispatch_queue (
        delivery_id bigint PRIMARY KEY,
        org uuid NOT NULL,
        partner_id uuid NOT NULL,
        due_at timestamptz NOT NULL
    );
    CREATE INDEX dispatch_queue_partner ON dispatch_queue (partner_id, delivery_id);
    """)
    execute_script(security_migration(*TENANT_TABLES))


def downgrade() -> None:
    execute_script(security_downgrade(*TENANT_TABLES))
    execute_script("DROP TABLE dispatch_queue; DROP TABLE deliveries; "
                   "DROP TABLE partner_consents; DROP TABLE partners;")
    execute_script(PLATFORM_DROP)
