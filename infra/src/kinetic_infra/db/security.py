"""Row-level security, the application role's grants, and the append-only audit table.

Why row-level security rather than a filter in every query: a forgotten ``WHERE tenant_id``
is the one bug that shows one organization another's patients, and it cannot be forgotten
below the endpoints. Every table with a ``tenant_id`` column has a policy that admits only
rows of the organization set for the current transaction (``kinetic.tenant_id``, set with
``set_config(…, true)`` by ``Database.transaction``), with ``FORCE`` so that not even the
table owner is exempt. The services connect as an application role that owns nothing, is
not a superuser and cannot bypass RLS; migrations run as the owner.
"""

from __future__ import annotations

from kinetic_infra.db.database import TENANT_SETTING

TENANT_PREDICATE = f"tenant_id = NULLIF(current_setting('{TENANT_SETTING}', true), '')::uuid"


def tenant_isolation(*tables: str) -> str:
    """DDL that puts ``tables`` under tenant isolation (enabled and forced)."""
    return "\n".join(
        f"ALTER TABLE {t} ENABLE ROW LEVEL SECURITY;\n"
        f"ALTER TABLE {t} FORCE ROW LEVEL SECURITY;\n"
        f"CREATE POLICY tenant_isolation ON {t} USING ({TENANT_PREDICATE}) "
        f"WITH CHECK ({TENANT_PREDICATE});"
        for t in tables
    )


# Append-only by construction: the application role is granted INSERT and SELECT only, and
# a trigger refuses UPDATE, DELETE and TRUNCATE for everyone (kept for the legal retention
# period: do not hard-delete). `hash` chains each organization's records (audit/trail.py).
AUDIT_DDL = """
CREATE TABLE audit_log (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id uuid NOT NULL,
    at timestamptz NOT NULL,
    actor text NOT NULL,
    role text NOT NULL,
    location_id uuid,
    patient_id uuid,
    action text NOT NULL,
    resource_type text NOT NULL,
    resource_id text,
    outcome text NOT NULL CHECK (outcome IN ('success', 'denied', 'error')),
    request_id text,
    trace_id text,
    prev_hash text NOT NULL,
    hash text NOT NULL UNIQUE
);
CREATE INDEX audit_log_tenant ON audit_log (tenant_id, id);
CREATE INDEX audit_log_patient ON audit_log (tenant_id, patient_id, id);
CREATE FUNCTION audit_log_is_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only';
END;
$$;
CREATE TRIGGER audit_log_no_update BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_is_append_only();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_is_append_only();
"""

AUDIT_DROP = """
DROP TABLE audit_log;
DROP FUNCTION audit_log_is_append_only();
"""

APPEND_ONLY_TABLES = ("audit_log",)


def app_role_grants(role: str) -> str:
    """Idempotent grants for the application role, run after every migration."""
    quoted = '"' + role.replace('"', '""') + '"'
    return "\n".join([
        f"GRANT USAGE ON SCHEMA public TO {quoted};",
        f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {quoted};",
        f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {quoted};",
        *(f"REVOKE UPDATE, DELETE, TRUNCATE ON {t} FROM {quoted};" for t in APPEND_ONLY_TABLES),
    ])


def security_migration(*service_tables: str) -> str:
    """Every service's security migration: tenant isolation for the event log and the
    service's own tenant tables, tenant-scoped dead letters, and the audit log."""
    from kinetic_infra.db.schema import DEAD_LETTER_TENANT_DDL

    return "\n".join([tenant_isolation("events", *service_tables), DEAD_LETTER_TENANT_DDL,
                      AUDIT_DDL, tenant_isolation("audit_log")])


def security_downgrade(*service_tables: str) -> str:
    return "\n".join(
        [f"DROP POLICY tenant_isolation ON {t};\nALTER TABLE {t} NO FORCE ROW LEVEL SECURITY;\n"
         f"ALTER TABLE {t} DISABLE ROW LEVEL SECURITY;" for t in ("events", *service_tables)]
        + ["DROP POLICY tenant_isolation ON dead_letters;",
           "ALTER TABLE dead_letters DISABLE ROW LEVEL SECURITY;",
           "ALTER TABLE dead_letters DROP COLUMN tenant_id;", AUDIT_DROP])
