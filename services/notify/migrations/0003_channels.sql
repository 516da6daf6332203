-- SMS and WhatsApp: deliveries on those channels too (one row per channel a message used).
-- The phone number comes from user.registered into recipients.phone (0001) and is read by the
-- claim statement itself; it is never copied into deliveries.

ALTER TABLE deliveries
    DROP CONSTRAINT deliveries_channel_check,
    ADD CONSTRAINT deliveries_channel_check
        CHECK (channel IN ('email', 'push', 'sms', 'whatsapp'));
