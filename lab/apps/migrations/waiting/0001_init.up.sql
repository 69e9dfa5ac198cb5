-- waiting v1: the queue (候诊队列). The version table waiting_schema is kept by hospapp-migrate.
CREATE TABLE waiting_queue (
    id           bigserial PRIMARY KEY,
    ticket       text        NOT NULL,
    patient_name text        NOT NULL,
    department   text        NOT NULL,
    status       text        NOT NULL DEFAULT 'waiting' CHECK (status IN ('waiting', 'called', 'done')),
    node         text        NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    called_at    timestamptz
);
CREATE INDEX waiting_queue_status_idx ON waiting_queue (status, department, id);
