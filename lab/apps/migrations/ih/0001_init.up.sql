-- ih v1: payments (扫码付 scan / 当面付 face). The version table ih_schema is kept by hospapp-migrate.
CREATE TABLE ih_payments (
    id          bigserial PRIMARY KEY,
    order_ref   text        NOT NULL,
    amount_fen  integer     NOT NULL CHECK (amount_fen > 0),
    method      text        NOT NULL CHECK (method IN ('scan', 'face')),
    status      text        NOT NULL DEFAULT 'recorded',
    probe       boolean     NOT NULL DEFAULT false,
    patient_mrn text,
    node        text        NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX ih_payments_created_at_idx ON ih_payments (created_at);
CREATE INDEX ih_payments_order_ref_idx ON ih_payments (order_ref);
