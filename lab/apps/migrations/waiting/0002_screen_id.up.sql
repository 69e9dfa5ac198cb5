-- waiting v2: which screen called the ticket. Nullable: v1 code keeps working.
ALTER TABLE waiting_queue ADD COLUMN screen_id text;
