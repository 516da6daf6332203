-- One verification attempt: counted before the comparison, compared in constant time.
-- KEYS: 1 code, 2 attempts      ARGV: 1 candidate digest, 2 max attempts
-- Returns {"ok", 0} | {"wrong", attempts left} | {"missing", 0}; the code is deleted on success
-- and with the last allowed failure, so nothing after that can match.
local stored = redis.call('GET', KEYS[1])
if not stored then return {'missing', 0} end

local attempts = redis.call('INCR', KEYS[2])
if redis.call('PTTL', KEYS[2]) < 0 then redis.call('PEXPIRE', KEYS[2], redis.call('PTTL', KEYS[1])) end
local max = tonumber(ARGV[2])
if attempts > max then
  redis.call('DEL', KEYS[1])
  return {'missing', 0}
end

-- Every byte is visited whatever the differences: no early exit to time.
local candidate = ARGV[1]
local diff = 0
if #candidate ~= #stored then diff = 1 end
for i = 1, #stored do
  diff = bit.bor(diff, bit.bxor(string.byte(stored, i), string.byte(candidate, i) or 0))
end

if diff == 0 then
  redis.call('DEL', KEYS[1], KEYS[2])
  return {'ok', 0}
end
if attempts >= max then redis.call('DEL', KEYS[1]) end
return {'wrong', max - attempts}
