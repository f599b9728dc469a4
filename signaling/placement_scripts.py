"""The Lua scripts of placement: each runs atomically in Redis, so concurrent joins on
different nodes never split a room, overfill a node, or issue one epoch twice.

The scripts read keys built from prefixes passed in ``ARGV`` (the candidates' entries,
their claim sets): fine on one Redis server, not on Redis Cluster.
"""

from __future__ import annotations

_PARSE = """
local function holder_of(v)
  if not v then return nil, nil end
  local i = string.find(v, '|', 1, true)
  if not i then return v, 0 end
  return string.sub(v, 1, i - 1), tonumber(string.sub(v, i + 1))
end
"""

# Find or choose the room's node and claim it there.
# KEYS: 1 room-node:{room}, 2 room-epoch:{room}, 3 nodes
# ARGV: 1 room id, 2 ttl, 3 candidate ('' = least loaded), 4 fenced node ('' = none),
#       5 node prefix, 6 node-rooms prefix, 7 room-node prefix, 8 streams per new room,
#       9 epoch ttl, 10 '1' if this node's view of the registry is settled (may move rooms)
# Returns {claim, node info json} or {false, reason}.
PLACE = (
    _PARSE
    + """
local room, ttl, candidate, fenced = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local node_p, rooms_p, claim_p = ARGV[5], ARGV[6], ARGV[7]
local function claim(node, epoch)
  local value = node .. '|' .. epoch
  redis.call('SET', KEYS[1], value, 'EX', ttl)
  redis.call('SADD', rooms_p .. node, room)
  return {value, redis.call('GET', node_p .. node)}
end
local cur = redis.call('GET', KEYS[1])
local holder, epoch = holder_of(cur)
if holder and holder ~= fenced and redis.call('EXISTS', node_p .. holder) == 1 then
  if candidate ~= '' and holder ~= candidate then return {cur, false} end
  return claim(holder, epoch)
end
-- Nobody live holds the room: the candidate, the previous holder if it is back, or the
-- least-loaded live node under its limit.
local last = redis.call('HGET', KEYS[2], 'node')
local last_epoch = tonumber(redis.call('HGET', KEYS[2], 'epoch') or '0')
local chosen = nil
if candidate ~= '' then
  chosen = candidate
elseif last and last ~= fenced and redis.call('EXISTS', node_p .. last) == 1 then
  local info = cjson.decode(redis.call('GET', node_p .. last))
  if info['accepting'] then chosen = last end
end
if not chosen then
  local best_score = nil
  for _, id in ipairs(redis.call('SMEMBERS', KEYS[3])) do
    local raw = redis.call('GET', node_p .. id)
    if not raw then
      redis.call('SREM', KEYS[3], id)
    elseif id ~= fenced then
      local info = cjson.decode(raw)
      local count = 0
      for _, r in ipairs(redis.call('SMEMBERS', rooms_p .. id)) do
        if holder_of(redis.call('GET', claim_p .. r)) == id then
          count = count + 1
        else
          redis.call('SREM', rooms_p .. id, r)
        end
      end
      if info['accepting'] and count < info['room_limit'] then
        local score = math.max(info['streams'], 0) + count * tonumber(ARGV[8])
        if best_score == nil or score < best_score or (score == best_score and id < chosen) then
          chosen, best_score = id, score
        end
      end
    end
  end
end
if not chosen then return {false, 'no_capacity'} end
if last and chosen ~= last and candidate == '' and last ~= fenced and ARGV[10] ~= '1' then
  -- the last holder may only be late re-registering (Redis just came back): do not move yet
  return {false, 'unsettled'}
end
if holder and holder ~= chosen then redis.call('SREM', rooms_p .. holder, room) end
local new_epoch = last_epoch
if chosen ~= last or last_epoch == 0 then
  new_epoch = redis.call('HINCRBY', KEYS[2], 'epoch', 1)
  redis.call('HSET', KEYS[2], 'node', chosen)
end
redis.call('EXPIRE', KEYS[2], ARGV[9])
return claim(chosen, new_epoch)
"""
)

# Renew this node's claims; returns the rooms it no longer holds.
# ARGV: 1 node, 2 ttl, 3 room-node prefix, 4 room-epoch prefix, 5 node-rooms key,
#       then pairs of room id, epoch.
RENEW = """
local node, ttl = ARGV[1], ARGV[2]
local lost = {}
for i = 6, #ARGV, 2 do
  local room, epoch = ARGV[i], ARGV[i + 1]
  local key = ARGV[3] .. room
  local mine = node .. '|' .. epoch
  local cur = redis.call('GET', key)
  if cur == mine then
    redis.call('EXPIRE', key, ttl)
  elseif not cur then
    local ekey = ARGV[4] .. room
    local issued = redis.call('HGET', ekey, 'epoch')
    if (not issued) or issued == epoch then
      -- lapsed (a stall, an outage) and nobody took it since: still ours
      redis.call('SET', key, mine, 'EX', ttl)
      redis.call('HSET', ekey, 'epoch', epoch, 'node', node)
      redis.call('SADD', ARGV[5], room)
    else
      table.insert(lost, room)
    end
  else
    table.insert(lost, room)
  end
end
return lost
"""

RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
redis.call('SREM', KEYS[2], ARGV[2])
return 0
"""
