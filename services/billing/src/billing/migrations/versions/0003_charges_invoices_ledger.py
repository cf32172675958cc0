"""Charges, invoices, the ledger, packs, invoice numbers, and what billing learns from booking
and assessment (locations, therapists, diagnoses).

Revision ID: 0003
Revises: 0002
"""

from alembic import op

from kinetic_infra.db.migrations import execute_script
from kinetic_infra.db.security import tenant_isolation

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

TABLES = ("invoices", "ledger_entries", "packs", "charges", "invoice_numbers",
          "billing_locations", "billing_therapists", "diagnoses")


def upgrade() -> None:
    execute_script("""
    -- Kept with the invoice events (same transaction); the event streams stay the record.
    CREATE TABLE invoices (
        invoice_id uuid PRIMARY KEY,
        tenant_id uuid NOT NULL,
        number text NOT NULL,
        patient_id uuid NOT NULL,
        location_id uuid NOT NULL,
        therapist_id uuid,
        appointment_id uuid,
        episode_id uuid,
        pack_id uuid,
        kind text NOT NULL,
        currency char(3) NOT NULL,
        total bigint NOT NULL CHECK (total >= 0),
        tax bigint NOT NULL CHECK (tax >= 0),
        paid bigint NOT NULL DEFAULT 0,
        refunded bigint NOT NULL DEFAULT 0 CHECK (refunded <= paid),
        credited bigint NOT NULL DEFAULT 0,
        outstanding bigint NOT NULL,
        status text NOT NULL,
        overdue boolean NOT NULL DEFAULT false,
        issued_at timestamptz NOT NULL,
        due_on date NOT NULL,
        updated_at timestamptz NOT NULL,
        UNIQUE (tenant_id, number)
    );
    CREATE INDEX invoices_location ON invoices (tenant_id, location_id, status, issued_at);
    CREATE INDEX invoices_patient ON invoices (tenant_id, patient_id, issued_at);
    -- The patient account: signed entries (positive: owed); the balance is their sum.
    CREATE TABLE ledger_entries (
        entry_id text PRIMARY KEY,
        tenant_id uuid NOT NULL,
        patient_id uuid NOT NULL,
        location_id uuid NOT NULL,
        therapist_id uuid,
        invoice_id uuid NOT NULL,
        kind text NOT NULL CHECK (kind IN ('charge', 'payment', 'refund', 'credit')),
        amount bigint NOT NULL,
        currency char(3) NOT NULL,
        method text,
        at timestamptz NOT NULL
    );
    CREATE INDEX ledger_patient ON ledger_entries (tenant_id, patient_id, at);
    CREATE INDEX ledger_takings ON ledger_entries (tenant_id, location_id, at)
        WHERE kind IN ('payment', 'refund');
    CREATE TABLE packs (
        pack_id uuid PRIMARY KEY,
        tenant_id uuid NOT NULL,
        patient_id uuid NOT NULL,
        location_id uuid NOT NULL,
        offer text NOT NULL,
        sessions integer NOT NULL,
        remaining integer NOT NULL CHECK (remaining >= 0),
        price bigint NOT NULL,
        currency char(3) NOT NULL,
        invoice_id uuid NOT NULL,
        status text NOT NULL,
        purchased_at timestamptz NOT NULL
    );
    CREATE INDEX packs_patient ON packs (tenant_id, patient_id, purchased_at)
        WHERE remaining > 0;
    -- One row per charged (or considered) appointment: the superbill's sessions.
    CREATE TABLE charges (
        appointment_id uuid PRIMARY KEY,
        tenant_id uuid NOT NULL,
        patient_id uuid NOT NULL,
        location_id uuid NOT NULL,
        therapist_id uuid NOT NULL,
        episode_id uuid,
        appointment_type text NOT NULL,
        outcome text NOT NULL,
        kind text,
        amount bigint,
        currency char(3),
        service_date date,
        cpt_codes text[] NOT NULL DEFAULT '{}',
        paid_by text,
        invoice_id uuid,
        pack_id uuid,
        status text NOT NULL CHECK (status IN ('charged', 'nothing', 'reversed')),
        reason text,
        updated_at timestamptz NOT NULL
    );
    CREATE INDEX charges_episode ON charges (tenant_id, episode_id, service_date);
    -- The organization's invoice number sequence, per year, without gaps.
    CREATE TABLE invoice_numbers (
        tenant_id uuid NOT NULL,
        year integer NOT NULL,
        last integer NOT NULL,
        PRIMARY KEY (tenant_id, year)
    );
    -- From booking and assessment: the names and codes billing's documents print.
    CREATE TABLE billing_locations (
        location_id uuid PRIMARY KEY,
        tenant_id uuid NOT NULL,
        name text NOT NULL,
        timezone text NOT NULL
    );
    CREATE TABLE billing_therapists (
        therapist_id uuid PRIMARY KEY,
        tenant_id uuid NOT NULL,
        display_name text
    );
    CREATE TABLE diagnoses (
        episode_id uuid PRIMARY KEY,
        tenant_id uuid NOT NULL,
        icd10 text NOT NULL,
        recorded_at timestamptz NOT NULL
    );
    """)
    execute_script(tenant_isolation(*TABLES))


def downgrade() -> None:
    for table in TABLES:
        op.execute(f"DROP TABLE {table}")
