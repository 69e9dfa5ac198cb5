-- How far each gate ledger (decisions.jsonl) has been imported into the audit chain.
CREATE TABLE gate_ledger_offsets (
  ledger TEXT PRIMARY KEY,
  file_id TEXT NOT NULL,
  byte_offset INTEGER NOT NULL,
  updated_at TEXT NOT NULL
);
