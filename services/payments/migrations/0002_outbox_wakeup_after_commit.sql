-- The shared outbox trigger sends NOTIFY inside the writer's transaction. PostgreSQL takes a
-- cluster-wide lock for a notifying commit and holds it through the commit's WAL flush, so
-- notifying commits run one at a time: measured here, 2.2k → 0.6k single-row transactions/s
-- from 10 connections. Payments wakes the relay after its commits instead (payments/wakeup.py),
-- from one connection with asynchronous commit; the relay's poll still backs it up.
DROP TRIGGER IF EXISTS outbox_notify ON outbox;
