"""The Lua scripts of the Redis Streams outbox: each outbox operation is one atomic script.

Keys of one adapter share the hash tag ``{adapter}`` (one cluster slot). KEYS[1] is the stream,
KEYS[2] the retry schedule (zset: entry id -> due ms), KEYS[3] the key owners (hash: business key
hash -> entry id), KEYS[4] the dead letters (hash: entry id -> JSON), KEYS[5] the prefix of the
per-key waiting lists and of the idempotency keys, KEYS[6] the records (hash: record field -> the
record as JSON). Pseudo-consumers ``~retry`` and ``~held`` keep scheduled and waiting entries in
the group's pending list, so trimming never drops them and the delivery count (XPENDING's)
survives every hand-over.

A stream entry is small: ``r`` (record id), ``k`` (business key hash) and ``b`` (the record's field
in the records hash). The record itself (``[kind, department, enqueued at]`` as JSON, a line feed,
the payload as JSON) never passes through Lua on the way in or out: the client writes it with HSET before the entry is
added and reads it with HMGET after the claim. Copying kilobytes of payload into Lua strings and
back cost more than all the bookkeeping. Entries written before this layout carry ``n d t p``
inline; CLAIM moves such a record into the hash when it hands the entry out.

Lua 5.1 ``unpack`` is bounded by the C stack (~8000 values): variadic calls go in chunks.
"""

from __future__ import annotations

COMMON = r"""
local stream, retry, owners, dead, prefix, records = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6]
local group = ARGV[1]
local CHUNK = 1000
local function fields_of(flat)
  local f = {}
  for i = 1, #flat, 2 do f[flat[i]] = flat[i + 1] end
  return f
end
local function each_chunk(command, key, list)
  for s = 1, #list, CHUNK do
    redis.call(command, key, unpack(list, s, math.min(s + CHUNK - 1, #list)))
  end
end
local function count_of(id)
  local p = redis.call('XPENDING', stream, group, id, id, 1)
  if p[1] then return p[1][4] end
  return 0
end
-- a released key goes to its next waiting version (scheduled now); false when none waits
local function hand_over(key, now)
  local nxt = redis.call('LPOP', prefix .. 'held:' .. key)
  if not nxt then return false end
  redis.call('HSET', owners, key, nxt)
  redis.call('XCLAIM', stream, group, '~retry', 0, nxt, 'JUSTID')
  redis.call('ZADD', retry, now, nxt)
  return true
end
local function release(id, key, now)
  if key == nil or key == '' then return end
  if redis.call('HGET', owners, key) ~= id then return end
  if not hand_over(key, now) then redis.call('HDEL', owners, key) end
end
local function entry_fields(id)
  local e = redis.call('XRANGE', stream, id, id)
  if e[1] then return fields_of(e[1][2]) end
  return nil
end
-- the record's field in the records hash; an entry of the inline layout gets one on first use
local function record_field(f)
  if f['b'] then return f['b'] end
  return f['r'] .. '/inline'
end
local function move_inline(f)
  local field = record_field(f)
  if not f['b'] and f['p'] then
    redis.call('HSET', records, field, cjson.encode({f['n'], f['d'], f['t']}) .. '\n' .. f['p'])
  end
  return field
end
"""

PUT = r"""
-- KEYS: stream, prefix; ARGV: ttl, then triples (record id, business key hash, record field).
-- The caller has written every record to its field already; a record queued before (the relay
-- after a crash) adds no entry and its new field is dropped, the first one stays.
local stream, prefix = KEYS[1], KEYS[2]
local ttl = ARGV[1]
local added = 0
local unused = {}
for i = 2, #ARGV, 3 do
  if redis.call('SET', prefix .. 'id:' .. ARGV[i], '1', 'NX', 'EX', ttl) then
    redis.call('XADD', stream, '*', 'r', ARGV[i], 'k', ARGV[i + 1], 'b', ARGV[i + 2])
    added = added + 1
  else
    table.insert(unused, ARGV[i + 2])
  end
end
for s = 1, #unused, 1000 do
  redis.call('HDEL', prefix .. 'records', unpack(unused, s, math.min(s + 999, #unused)))
end
return added
"""

CLAIM = COMMON + r"""
-- Returns a flat list, six values per entry: id, attempts, record id, key, last error, record field.
local me, limit, now, lease_ms = ARGV[2], tonumber(ARGV[3]), ARGV[4], tonumber(ARGV[5])
local out = {}
local n = 0
local function emit(id, attempts, rid, key, err, field)
  local i = #out
  out[i + 1], out[i + 2], out[i + 3], out[i + 4], out[i + 5], out[i + 6] = id, attempts, rid, key, err, field
  n = n + 1
end
local function emit_again(e)
  local f = fields_of(e[2])
  emit(e[1], count_of(e[1]), f['r'], f['k'], redis.call('HGET', prefix .. 'errors', e[1]) or '', move_inline(f))
end
-- 1. retries that came due (and waiting versions whose turn came)
local due = redis.call('ZRANGEBYSCORE', retry, '-inf', now, 'LIMIT', 0, limit)
for _, id in ipairs(due) do
  redis.call('ZREM', retry, id)
  local e = redis.call('XCLAIM', stream, group, me, 0, id)
  if e[1] then emit_again(e[1]) end
end
-- 2. entries of a worker that stopped renewing its lease (crashed): reclaimed, count kept
if n < limit then
  for _, c in ipairs(redis.call('XINFO', 'CONSUMERS', stream, group)) do
    local name = c[2]
    if string.sub(name, 1, 1) ~= '~' and n < limit then
      local stale = redis.call('XPENDING', stream, group, 'IDLE', lease_ms, '-', '+', limit - n, name)
      for _, p in ipairs(stale) do
        local e = redis.call('XCLAIM', stream, group, me, lease_ms, p[1])
        if e[1] then emit_again(e[1]) end
      end
    end
  end
end
-- 3. new entries; a version whose key has an earlier one on its way waits behind it. The owners
-- of a round's keys are read and written with one HMGET and one HSET (per chunk).
local rounds = 0
while n < limit and rounds < 4 do
  rounds = rounds + 1
  local got = redis.call('XREADGROUP', 'GROUP', group, me, 'COUNT', limit - n, 'STREAMS', stream, '>')
  if not got or not got[1] or #got[1][2] == 0 then break end
  local entries, rids, keys, rfields, lookup = got[1][2], {}, {}, {}, {}
  for j, e in ipairs(entries) do
    local flat = e[2]
    if flat[1] == 'r' and flat[3] == 'k' and flat[5] == 'b' then  -- the layout PUT writes
      rids[j], keys[j], rfields[j] = flat[2], flat[4], flat[6]
    else
      local f = fields_of(flat)
      rids[j], keys[j], rfields[j] = f['r'], f['k'], move_inline(f)
    end
    if keys[j] ~= '' then table.insert(lookup, keys[j]) end
  end
  local owner_of = {}
  for s = 1, #lookup, CHUNK do
    local part = {unpack(lookup, s, math.min(s + CHUNK - 1, #lookup))}
    local found = redis.call('HMGET', owners, unpack(part))
    for j, key in ipairs(part) do
      if found[j] then owner_of[key] = found[j] end
    end
  end
  local owned = {}
  for j, e in ipairs(entries) do
    local id, key = e[1], keys[j]
    local owner = owner_of[key]
    if key ~= '' and owner and owner ~= id then
      redis.call('XCLAIM', stream, group, '~held', 0, id, 'JUSTID', 'RETRYCOUNT', 0)
      redis.call('RPUSH', prefix .. 'held:' .. key, id)
    else
      if key ~= '' then
        owner_of[key] = id
        table.insert(owned, key)
        table.insert(owned, id)
      end
      emit(id, 1, rids[j], key, '', rfields[j])
    end
  end
  each_chunk('HSET', owners, owned)
end
return out
"""

COMPLETE = COMMON + r"""
-- ARGV[3..]: triples (entry id, its business key hash, its record field); '?' for the key when the
-- caller does not know them, then both are read from the entry. The owners of all keys are read
-- with one HMGET; only a key this entry owns is released (its next version, if one waits).
local now = ARGV[2]
local ids, fields, keys, key_ids = {}, {}, {}, {}
for i = 3, #ARGV, 3 do
  local id, key, field = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  if key == '?' then
    local f = entry_fields(id)
    key, field = nil, nil
    if f then key, field = f['k'], record_field(f) end
  end
  table.insert(ids, id)
  if field then table.insert(fields, field) end
  if key and key ~= '' then
    table.insert(keys, key)
    table.insert(key_ids, id)
  end
end
local repeated, seen = false, {}
for _, key in ipairs(keys) do
  if seen[key] then repeated = true end
  seen[key] = true
end
local owned, freed = {}, {}
if repeated then  -- versions of one key in one call: released one after the other, in order
  for j, key in ipairs(keys) do release(key_ids[j], key, now) end
else
  for s = 1, #keys, CHUNK do
    local last = math.min(s + CHUNK - 1, #keys)
    local found = redis.call('HMGET', owners, unpack(keys, s, last))
    for j = s, last do
      if found[j - s + 1] == key_ids[j] then table.insert(owned, keys[j]) end
    end
  end
end
-- an owned key is handed to its next waiting version, or freed; mostly none waits (EXISTS tells)
local waiting = 0
for s = 1, #owned, CHUNK do
  local lists = {}
  for j = s, math.min(s + CHUNK - 1, #owned) do table.insert(lists, prefix .. 'held:' .. owned[j]) end
  waiting = waiting + redis.call('EXISTS', unpack(lists))
end
if waiting > 0 then
  for _, key in ipairs(owned) do
    if not hand_over(key, now) then table.insert(freed, key) end
  end
else
  freed = owned
end
each_chunk('HDEL', owners, freed)
for s = 1, #ids, CHUNK do
  redis.call('XACK', stream, group, unpack(ids, s, math.min(s + CHUNK - 1, #ids)))
end
each_chunk('ZREM', retry, ids)
each_chunk('HDEL', prefix .. 'errors', ids)
each_chunk('HDEL', records, fields)
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
-- A dead letter keeps the entry's fields, its record (``v``, the JSON of the records hash; entries
-- of the inline layout keep ``n d t p`` instead), attempts, error and time. An entry whose record is
-- gone was completed meanwhile by the worker it had been reclaimed from: it is not a dead letter.
local now, err = ARGV[2], ARGV[3]
for i = 4, #ARGV do
  local id = ARGV[i]
  local f = entry_fields(id)
  if f and f['b'] then
    f['v'] = redis.call('HGET', records, f['b'])
    if not f['v'] then f = nil end
  end
  if f then
    f['a'] = count_of(id)
    f['e'] = err
    f['at'] = now
    redis.call('HSET', dead, id, cjson.encode(f))
    redis.call('XACK', stream, group, id)
    redis.call('ZREM', retry, id)
    redis.call('HDEL', prefix .. 'errors', id)
    redis.call('HDEL', records, record_field(f))
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
    local id
    if f['v'] then
      local field = f['r'] .. '/' .. ARGV[i]
      redis.call('HSET', records, field, f['v'])
      id = redis.call('XADD', stream, '*', 'r', f['r'], 'k', f['k'], 'b', field)
    else
      id = redis.call('XADD', stream, '*', 'r', f['r'], 'k', f['k'], 'n', f['n'], 'd', f['d'],
                      't', f['t'], 'p', f['p'])
    end
    redis.call('SET', prefix .. 'id:' .. f['r'], id, 'EX', ttl)
    redis.call('HDEL', dead, ARGV[i])
    table.insert(out, id)
  end
end
return out
"""
