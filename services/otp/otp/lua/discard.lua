-- Withdraws a code nobody could receive: deleted only if it is still the one this send stored,
-- and the cooldown released so the user may try again once a provider is back.
-- KEYS: 1 code, 2 cooldown      ARGV: 1 digest
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1], KEYS[2])
  return 1
end
return 0
