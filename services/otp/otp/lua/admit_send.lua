-- Send admission for one phone and purpose, in one atomic step: two racing sends cannot both pass.
-- KEYS: 1 code, 2 attempts, 3 cooldown (per phone), 4 hourly, 5 daily (per phone), 6 per-IP hourly
-- ARGV: 1 code digest, 2 code ttl ms, 3 cooldown ms, 4 max attempts,
--       5 hourly cap, 6 daily cap, 7 IP cap, 8 hour ms, 9 day ms
-- Returns {1, "ok", 0} or {0, reason, retry_after_ms}; refused requests consume no quota.
local function ttl(key)
  local ms = redis.call('PTTL', key)
  if ms < 0 then return 1000 end
  return ms
end

if redis.call('EXISTS', KEYS[3]) == 1 then
  return {0, 'cooldown', ttl(KEYS[3])}
end
if tonumber(redis.call('GET', KEYS[2]) or '0') >= tonumber(ARGV[4]) then
  return {0, 'locked', ttl(KEYS[2])}
end
local caps = {{KEYS[4], ARGV[5], 'hourly'}, {KEYS[5], ARGV[6], 'daily'}, {KEYS[6], ARGV[7], 'ip'}}
for _, cap in ipairs(caps) do
  if tonumber(redis.call('GET', cap[1]) or '0') >= tonumber(cap[2]) then
    return {0, cap[3], ttl(cap[1])}
  end
end

redis.call('SET', KEYS[3], '1', 'PX', ARGV[3])
local windows = {{KEYS[4], ARGV[8]}, {KEYS[5], ARGV[9]}, {KEYS[6], ARGV[8]}}
for _, window in ipairs(windows) do
  if redis.call('INCR', window[1]) == 1 then redis.call('PEXPIRE', window[1], window[2]) end
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
-- A resend keeps the attempts already spent; the counter must outlive the newest code.
if redis.call('SET', KEYS[2], '0', 'PX', ARGV[2], 'NX') == false then
  if redis.call('PTTL', KEYS[2]) < tonumber(ARGV[2]) then redis.call('PEXPIRE', KEYS[2], ARGV[2]) end
end
return {1, 'ok', 0}
