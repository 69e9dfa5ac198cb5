-- Every notification delivery attempt series: one row per (event, route target), with its outcome.
-- Endpoints are referred to by channel name only: never a webhook URL with its token, never a password.
CREATE TABLE notifications (
  id TEXT PRIMARY KEY,
  at TEXT NOT NULL,
  event TEXT NOT NULL,
  subject TEXT NOT NULL,
  channel TEXT NOT NULL,
  contact TEXT NOT NULL DEFAULT '',
  status TEXT NOT NULL,
  attempts INTEGER NOT NULL DEFAULT 0,
  error TEXT NOT NULL DEFAULT ''
);
CREATE INDEX notifications_subject ON notifications (subject, event);

-- Marks so that a "deadline near" or "deadline breached" notice goes out once per incident and clock.
CREATE TABLE notify_marks (
  subject TEXT NOT NULL,
  mark TEXT NOT NULL,
  at TEXT NOT NULL,
  PRIMARY KEY (subject, mark)
);
