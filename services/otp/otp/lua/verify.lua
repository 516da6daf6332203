-- One verification attempt by one client: counted against that client before anything else,
-- then compared in constant time. The answer is the same whether or not a code is live: a
-- missing code is just a wrong one, and `left` is always the caller's own remaining attempts.
-- KEYS: 1 code, 2 wrong codes (all clients), 3 client's tries, 4 gap
-- ARGV: 1 candidate digest, 2 max attempts per client, 3 max wrong codes per code,
--       4 code ttl ms, 5 cooldown ms
-- Returns {"ok", 0} | {"wrong", attempts left}. The code is deleted on success and when all
-- clients together reach the wrong-code ceiling, so guesses spread over many clients still fail.
local tries = redis.call('INCR', KEYS[3])
if redis.call('PTTL', KEYS[3]) < 0 then redis.call('PEXPIRE', KEYS[3], ARGV[4]) end
local max = tonumber(ARGV[2])
if tries > max then return {'wrong', 0} end
local left = max - tries

local stored = redis.call('GET', KEYS[1])
if not stored then return {'wrong', left} end

-- Every byte is visited whatever the differences: no early exit to time.
local candidate = ARGV[1]
local diff = 0
if #candidate ~= #stored then diff = 1 end
for i = 1, #stored do
  diff = bit.bor(diff, bit.bxor(string.byte(stored, i), string.byte(candidate, i) or 0))
end

if diff == 0 then
  redis.call('DEL', KEYS[1], KEYS[2], KEYS[3])
  return {'ok', 0}
end
if redis.call('INCR', KEYS[2]) >= tonumber(ARGV[3]) then
  redis.call('DEL', KEYS[1], KEYS[2])
  -- The owner may ask for a new code at once; a grown backoff still stands.
  if redis.call('GET', KEYS[4]) == ARGV[5] then redis.call('DEL', KEYS[4]) end
end
return {'wrong', left}
