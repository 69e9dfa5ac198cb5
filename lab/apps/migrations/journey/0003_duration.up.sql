-- DELIBERATELY BROKEN (release 2.1.0-badmigration): fails after the first statement succeeded.
ALTER TABLE journey_events ADD COLUMN duration_s integer;
CREATE INDEX journey_events_duration_idx ON journey_events (stage_duration);
