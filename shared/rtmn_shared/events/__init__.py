"""Events between services: the envelope, the catalogue, the outbox, the relay and the consumers."""
