ALTER TABLE waiting_queue DROP COLUMN screen_id;
