-- DELIBERATELY BROKEN (release 2.1.0-badmigration): fails after the first statement succeeded.
ALTER TABLE waiting_queue ADD COLUMN priority integer NOT NULL DEFAULT 0;
CREATE INDEX waiting_queue_priority_idx ON waiting_queue (priority_class, id);
