-- DELIBERATELY BROKEN (release 2.1.0-badmigration): fails after the first statement succeeded.
ALTER TABLE portal_appointments ADD COLUMN reminder_sent boolean NOT NULL DEFAULT false;
CREATE INDEX portal_appointments_reminder_idx ON portal_appointments (reminder_due_at);
