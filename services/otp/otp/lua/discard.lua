-- Withdraws a code nobody could receive: deleted only if it is still the one this send stored,
-- with the phone's gap, the caller's cooldown and the send it counted, so the user may try again
-- once a provider is back.
-- KEYS: 1 code, 2 gap, 3 client's cooldown, 4 sends to the phone      ARGV: 1 digest
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1], KEYS[2], KEYS[3])
  if tonumber(redis.call('GET', KEYS[4]) or '0') > 0 then redis.call('DECR', KEYS[4]) end
  return 1
end
return 0
