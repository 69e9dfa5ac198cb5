-- ih v2: the payment channel's reference. Nullable, no default rewrite: v1 code keeps working.
ALTER TABLE ih_payments ADD COLUMN channel_ref text;
CREATE INDEX ih_payments_channel_ref_idx ON ih_payments (channel_ref);
