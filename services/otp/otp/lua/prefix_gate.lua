-- SMS-pumping gate for one destination prefix: refused while the prefix is blocked; blocked now
-- when, over the rolling window, at least `min sends` codes went to it and fewer than `floor` of
-- them were verified. Counting is done elsewhere (sends after a provider took them, verifications
-- on success); this script only reads the buckets and sets the block, which stays until an
-- operator allows the prefix again.
-- KEYS: 1 blocked hash (prefix -> blocked at ms), 2..n+1 sent buckets, n+2..2n+1 verified buckets
-- ARGV: 1 prefix, 2 buckets n, 3 floor (0..1), 4 min sends, 5 now ms
-- Returns {0} open, {1} already blocked, {2} blocked by this call.
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 1 then return {1} end
local n = tonumber(ARGV[2])
local sent, verified = 0, 0
for i = 1, n do
  sent = sent + tonumber(redis.call('GET', KEYS[1 + i]) or '0')
  verified = verified + tonumber(redis.call('GET', KEYS[1 + n + i]) or '0')
end
if sent >= tonumber(ARGV[4]) and verified < tonumber(ARGV[3]) * sent then
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[5])
  return {2}
end
return {0}
