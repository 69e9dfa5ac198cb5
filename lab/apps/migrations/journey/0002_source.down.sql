ALTER TABLE journey_events DROP COLUMN source;
