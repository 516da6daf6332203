-- Bytes each owner's stored objects take, plus what their uploads in flight have reserved:
-- one row per owner, so a conditional UPDATE can refuse an upload that would pass the quota
-- however many run at once.
CREATE TABLE usage (
    owner_id   TEXT PRIMARY KEY,
    used_bytes BIGINT NOT NULL CHECK (used_bytes >= 0)
);

-- What is already stored counts.
INSERT INTO usage (owner_id, used_bytes)
SELECT m.owner_id, sum((r.value ->> 'bytes')::bigint)
FROM media m, jsonb_each(m.renditions) r
GROUP BY m.owner_id;
