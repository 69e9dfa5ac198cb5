DROP TABLE portal_appointments;
