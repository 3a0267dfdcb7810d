-- 0004: stored TTLs lie in the API's range, 1 second .. 36525 days (100
-- years, validate.MAX_TTL). Releases before it accepted any length, and a
-- TTL like '999999999 days' made commit_time + ttl overflow inside
-- PostgreSQL ("timestamp out of range"), failing every GC pass for everyone.
-- Such rows are clamped to the bound: a TTL beyond 100 years and one of
-- exactly 100 years expire alike for any version committed in this century.

UPDATE versions SET ttl = LEAST(GREATEST(ttl, interval '1 second'), interval '36525 days')
WHERE ttl > interval '36525 days' OR ttl < interval '1 second';
UPDATE entities SET default_ttl = LEAST(GREATEST(default_ttl, interval '1 second'), interval '36525 days')
WHERE default_ttl > interval '36525 days' OR default_ttl < interval '1 second';

ALTER TABLE versions ADD CONSTRAINT versions_ttl_range
    CHECK (ttl BETWEEN interval '1 second' AND interval '36525 days');
ALTER TABLE entities ADD CONSTRAINT entities_default_ttl_range
    CHECK (default_ttl BETWEEN interval '1 second' AND interval '36525 days');
