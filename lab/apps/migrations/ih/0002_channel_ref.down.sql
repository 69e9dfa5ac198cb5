DROP INDEX IF EXISTS ih_payments_channel_ref_idx;
ALTER TABLE ih_payments DROP COLUMN channel_ref;
