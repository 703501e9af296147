"""The Lua scripts of the Redis Streams outbox: each outbox operation is one atomic script.

Keys of one adapter share the hash tag ``{adapter}`` (one cluster slot). KEYS[1] is the stream,
KEYS[2] the retry schedule (zset: entry id -> due ms), KEYS[3] the key owners (hash: business key
hash -> entry id), KEYS[4] the dead letters (hash: entry id -> JSON), KEYS[5] the prefix of the
per-key waiting lists and of the idempotency keys. Pseudo-consumers ``~retry`` and ``~held``
keep scheduled and waiting entries in the group's pending list, so trimming never drops them and
the delivery count (XPENDING's) survives every hand-over.
"""

from __future__ import annotations

COMMON = r"""
local stream, retry, owners, dead, prefix = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local group = ARGV[1]
local function fields_of(entry)
  local f = {}
  local flat = entry[2]
  for i = 1, #flat, 2 do f[flat[i]] = flat[i + 1] end
  return f
end
local function count_of(id)
  local p = redis.call('XPENDING', stream, group, id, id, 1)
  if p[1] then return p[1][4] end
  return 0
end
local function release(id, key, now)
  if key == nil or key == '' then return end
  if redis.call('HGET', owners, key) ~= id then return end
  local nxt = redis.call('LPOP', prefix .. 'held:' .. key)
  if nxt then
    redis.call('HSET', owners, key, nxt)
    redis.call('XCLAIM', stream, group, '~retry', 0, nxt, 'JUSTID')
    redis.call('ZADD', retry, now, nxt)
  else
    redis.call('HDEL', owners, key)
  end
end
local function entry_fields(id)
  local e = redis.call('XRANGE', stream, id, id)
  if e[1] then return fields_of(e[1]) end
  return nil
end
"""

PUT = r"""
local stream, prefix = KEYS[1], KEYS[2]
local ttl = ARGV[1]
local added = 0
for i = 2, #ARGV, 6 do
  local idkey = prefix .. 'id:' .. ARGV[i]
  if redis.call('SET', idkey, '1', 'NX', 'EX', ttl) then
    local id = redis.call('XADD', stream, '*', 'r', ARGV[i], 'k', ARGV[i + 1], 'n', ARGV[i + 2],
                          'd', ARGV[i + 3], 't', ARGV[i + 4], 'p', ARGV[i + 5])
    redis.call('SET', idkey, id, 'EX', ttl)
    added = added + 1
  end
end
return added
"""

CLAIM = COMMON + r"""
local me, limit, now, lease_ms = ARGV[2], tonumber(ARGV[3]), ARGV[4], tonumber(ARGV[5])
local out = {}
local function emit(entry, attempts)
  local f = fields_of(entry)
  local err = redis.call('HGET', prefix .. 'errors', entry[1]) or ''
  table.insert(out, {entry[1], attempts, f['r'], f['k'], f['n'], f['d'], f['t'], f['p'], err})
end
-- 1. retries that came due (and waiting versions whose turn came)
local due = redis.call('ZRANGEBYSCORE', retry, '-inf', now, 'LIMIT', 0, limit)
for _, id in ipairs(due) do
  redis.call('ZREM', retry, id)
  local e = redis.call('XCLAIM', stream, group, me, 0, id)
  if e[1] then emit(e[1], count_of(id)) end
end
-- 2. entries of a worker that stopped renewing its lease (crashed): reclaimed, count kept
if #out < limit then
  for _, c in ipairs(redis.call('XINFO', 'CONSUMERS', stream, group)) do
    local name = c[2]
    if string.sub(name, 1, 1) ~= '~' and #out < limit then
      local stale = redis.call('XPENDING', stream, group, 'IDLE', lease_ms, '-', '+', limit - #out, name)
      for _, p in ipairs(stale) do
        local e = redis.call('XCLAIM', stream, group, me, lease_ms, p[1])
        if e[1] then emit(e[1], count_of(p[1])) end
      end
    end
  end
end
-- 3. new entries; a version whose key has an earlier one on its way waits behind it
local rounds = 0
while #out < limit and rounds < 4 do
  rounds = rounds + 1
  local got = redis.call('XREADGROUP', 'GROUP', group, me, 'COUNT', limit - #out, 'STREAMS', stream, '>')
  if not got or not got[1] or #got[1][2] == 0 then break end
  for _, e in ipairs(got[1][2]) do
    local key = fields_of(e)['k']
    local owner = nil
    if key ~= '' then owner = redis.call('HGET', owners, key) end
    if owner and owner ~= e[1] then
      redis.call('XCLAIM', stream, group, '~held', 0, e[1], 'JUSTID', 'RETRYCOUNT', 0)
      redis.call('RPUSH', prefix .. 'held:' .. key, e[1])
    else
      if key ~= '' then redis.call('HSET', owners, key, e[1]) end
      emit(e, 1)
    end
  end
end
return out
"""

COMPLETE = COMMON + r"""
-- ARGV[3..]: pairs (entry id, its business key hash; '?' when the caller does not know it, then it
-- is read from the entry: reading every entry back, payload and all, would cost more than the rest)
local now = ARGV[2]
for i = 3, #ARGV, 2 do
  local id, key = ARGV[i], ARGV[i + 1]
  if key == '?' then
    local f = entry_fields(id)
    key = f and f['k'] or nil
  end
  redis.call('XACK', stream, group, id)
  redis.call('ZREM', retry, id)
  redis.call('HDEL', prefix .. 'errors', id)
  release(id, key, now)
end
-- trim what every reader is done with: below the oldest pending entry and the group's cursor
local summary = redis.call('XPENDING', stream, group)
local floor = nil
for _, g in ipairs(redis.call('XINFO', 'GROUPS', stream)) do
  if g[2] == group then
    local last = g[8]
    local ms, seq = string.match(last, '(%d+)-(%d+)')
    floor = ms .. '-' .. tostring(tonumber(seq) + 1)
  end
end
if summary[1] > 0 then floor = summary[2] end
if floor then redis.call('XTRIM', stream, 'MINID', floor) end
return 1
"""

RETRY = COMMON + r"""
local due, err = ARGV[2], ARGV[3]
for i = 4, #ARGV do
  local id = ARGV[i]
  local c = redis.call('XCLAIM', stream, group, '~retry', 0, id, 'JUSTID')
  if c[1] then
    redis.call('ZADD', retry, due, id)
    redis.call('HSET', prefix .. 'errors', id, err)
  end
end
return 1
"""

DEAD = COMMON + r"""
local now, err = ARGV[2], ARGV[3]
for i = 4, #ARGV do
  local id = ARGV[i]
  local f = entry_fields(id)
  if f then
    f['a'] = count_of(id)
    f['e'] = err
    f['at'] = now
    redis.call('HSET', dead, id, cjson.encode(f))
    redis.call('XACK', stream, group, id)
    redis.call('ZREM', retry, id)
    redis.call('HDEL', prefix .. 'errors', id)
    release(id, f['k'], now)
  end
end
return 1
"""

REDRIVE = COMMON + r"""
local ttl = ARGV[2]
local out = {}
for i = 3, #ARGV do
  local raw = redis.call('HGET', dead, ARGV[i])
  if raw then
    local f = cjson.decode(raw)
    local id = redis.call('XADD', stream, '*', 'r', f['r'], 'k', f['k'], 'n', f['n'], 'd', f['d'],
                          't', f['t'], 'p', f['p'])
    redis.call('SET', prefix .. 'id:' .. f['r'], id, 'EX', ttl)
    redis.call('HDEL', dead, ARGV[i])
    table.insert(out, id)
  end
end
return out
"""
