-- portal v2: the booking channel. Nullable: v1 code keeps working.
ALTER TABLE portal_appointments ADD COLUMN channel text;
