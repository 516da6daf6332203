-- The trace context of the request that created the payment (W3C traceparent). The event of
-- its outcome continues that trace, whichever request (a webhook, a verify, reconciliation)
-- brings the outcome: one payment, one trace id in the logs and, when exported, one trace.
ALTER TABLE payments ADD COLUMN traceparent TEXT;
