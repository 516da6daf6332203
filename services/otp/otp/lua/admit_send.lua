-- Send admission for one phone, purpose and client, in one atomic step: racing sends cannot
-- both pass. The caller's own limits come first (they tell it nothing about anyone else), then
-- the phone's gap: within the plain cooldown a fresh code is already on its way to the phone,
-- so the send is answered as sent and nothing is sent (no sign of whether a login is going on);
-- a gap grown past the cooldown is the phone's backoff, the same 429 for every caller.
-- KEYS: 1 code, 2 wrong codes (all clients), 3 gap, 4 sends to the phone (all purposes),
--       5 client's tries, 6 client's cooldown, 7 client's hourly, 8 client's daily, 9 per-IP hourly
-- ARGV: 1 code digest, 2 code ttl ms, 3 cooldown ms, 4 max attempts, 5 hourly cap, 6 daily cap,
--       7 IP cap, 8 hour ms, 9 day ms, 10 sends before backoff, 11 backoff cap ms
-- Returns {1, "ok", 0} (send it), {2, "coalesced", 0} (answer as sent) or {0, reason, wait ms};
-- refused requests consume no quota.
local function ttl(key)
  local ms = redis.call('PTTL', key)
  if ms < 0 then return 1000 end
  return ms
end

local function count(key, window)
  if redis.call('INCR', key) == 1 then redis.call('PEXPIRE', key, window) end
end

local cooldown = tonumber(ARGV[3])

if redis.call('EXISTS', KEYS[6]) == 1 then
  return {0, 'cooldown', ttl(KEYS[6])}
end
if tonumber(redis.call('GET', KEYS[5]) or '0') >= tonumber(ARGV[4]) then
  return {0, 'locked', ttl(KEYS[5])}
end
local caps = {{KEYS[7], ARGV[5], 'hourly'}, {KEYS[8], ARGV[6], 'daily'}, {KEYS[9], ARGV[7], 'ip'}}
for _, cap in ipairs(caps) do
  if tonumber(redis.call('GET', cap[1]) or '0') >= tonumber(cap[2]) then
    return {0, cap[3], ttl(cap[1])}
  end
end

local function spend_client_quota()
  redis.call('SET', KEYS[6], '1', 'PX', cooldown)
  count(KEYS[7], ARGV[8])
  count(KEYS[8], ARGV[9])
  count(KEYS[9], ARGV[8])
end

local gap = redis.call('GET', KEYS[3])
if gap then
  if tonumber(gap) > cooldown then return {0, 'backoff', ttl(KEYS[3])} end
  spend_client_quota()
  return {2, 'coalesced', 0}
end

-- Sends beyond the free ones double the gap, up to the cap; an hour without sends resets it.
local sent = redis.call('INCR', KEYS[4])
redis.call('PEXPIRE', KEYS[4], ARGV[8])
local wait = cooldown
local over = sent - tonumber(ARGV[10])
if over > 0 then
  wait = math.min(cooldown * 2 ^ math.min(over, 30), tonumber(ARGV[11]))
end
redis.call('SET', KEYS[3], string.format('%d', wait), 'PX', string.format('%d', wait))
spend_client_quota()
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
redis.call('SET', KEYS[2], '0', 'PX', ARGV[2])
-- A resend keeps the caller's spent attempts; its counter must outlive the newest code.
if redis.call('SET', KEYS[5], '0', 'PX', ARGV[2], 'NX') == false then
  if redis.call('PTTL', KEYS[5]) < tonumber(ARGV[2]) then redis.call('PEXPIRE', KEYS[5], ARGV[2]) end
end
return {1, 'ok', 0}
