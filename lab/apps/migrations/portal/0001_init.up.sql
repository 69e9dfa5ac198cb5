-- portal v1: appointments (预约挂号). The version table portal_schema is kept by hospapp-migrate.
CREATE TABLE portal_appointments (
    id           bigserial PRIMARY KEY,
    patient_name text        NOT NULL,
    mrn          text        NOT NULL,
    mobile       text,
    department   text        NOT NULL,
    slot         timestamptz NOT NULL,
    status       text        NOT NULL DEFAULT 'booked',
    node         text        NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX portal_appointments_slot_idx ON portal_appointments (slot);
