DROP INDEX IF EXISTS waiting_queue_priority_idx;
ALTER TABLE waiting_queue DROP COLUMN IF EXISTS priority;
