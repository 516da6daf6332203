-- Which transaction applied an effect: the consumer's batches show as shared ids.
ALTER TABLE effects ADD COLUMN txid BIGINT NOT NULL DEFAULT txid_current();
