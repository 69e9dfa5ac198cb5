-- Documents kept beside a change request, e.g. the summary of an upgrade's rehearsal (what would
-- change on each host) that approvers read before they sign. Not part of the signed request: body is
-- canonical JSON and sha256 its hash, also written to the audit chain (change.attach).
CREATE TABLE change_attachments (
  id TEXT PRIMARY KEY,
  change_id TEXT NOT NULL REFERENCES changes (id),
  kind TEXT NOT NULL,
  created_at TEXT NOT NULL,
  sha256 TEXT NOT NULL,
  body TEXT NOT NULL
);
CREATE INDEX change_attachments_change ON change_attachments (change_id, kind, created_at)
