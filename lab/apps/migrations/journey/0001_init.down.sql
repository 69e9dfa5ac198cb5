DROP TABLE journey_events;
