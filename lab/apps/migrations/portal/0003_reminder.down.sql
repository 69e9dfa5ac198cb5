DROP INDEX IF EXISTS portal_appointments_reminder_idx;
ALTER TABLE portal_appointments DROP COLUMN IF EXISTS reminder_sent;
