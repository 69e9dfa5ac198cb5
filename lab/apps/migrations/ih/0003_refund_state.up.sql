-- DELIBERATELY BROKEN (release 2.1.0-badmigration): the first statement succeeds, the second names a
-- column that does not exist, so the run fails half-way and must leave the database as it was.
ALTER TABLE ih_payments ADD COLUMN refund_state text NOT NULL DEFAULT 'none';
CREATE INDEX ih_payments_refund_idx ON ih_payments (refund_requested_at);
