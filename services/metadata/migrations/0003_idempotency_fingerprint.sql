-- 0003: a request_id is bound to the request it was first used with, and a
-- replay re-checks the access the first call was granted (idempotency.py).

-- sha256 of the request with its request_id cleared; NULL in rows written
-- before this migration, which replay as they did.
ALTER TABLE idempotency ADD COLUMN fingerprint bytea;
-- The access checks the first call passed, [[kind, id, role], ...].
ALTER TABLE idempotency ADD COLUMN grants jsonb;
