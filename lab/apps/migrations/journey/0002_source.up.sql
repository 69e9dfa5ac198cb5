-- journey v2: the system that reported the event. Nullable: v1 code keeps working.
ALTER TABLE journey_events ADD COLUMN source text;
