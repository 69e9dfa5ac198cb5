ALTER TABLE portal_appointments DROP COLUMN channel;
