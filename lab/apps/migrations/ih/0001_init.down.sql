DROP TABLE ih_payments;
