DROP INDEX IF EXISTS ih_payments_refund_idx;
ALTER TABLE ih_payments DROP COLUMN IF EXISTS refund_state;
