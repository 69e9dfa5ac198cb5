-- journey v1: visit events (就诊节点). The version table journey_schema is kept by hospapp-migrate.
CREATE TABLE journey_events (
    id          bigserial PRIMARY KEY,
    visit_id    text        NOT NULL,
    stage       text        NOT NULL CHECK (stage IN ('registration', 'triage', 'consultation', 'payment',
                                                      'exam', 'pharmacy', 'done')),
    note        text        NOT NULL DEFAULT '',
    patient_mrn text,
    node        text        NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX journey_events_visit_idx ON journey_events (visit_id, created_at);
