DROP INDEX IF EXISTS journey_events_duration_idx;
ALTER TABLE journey_events DROP COLUMN IF EXISTS duration_s;
