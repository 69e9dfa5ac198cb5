DROP TABLE waiting_queue;
