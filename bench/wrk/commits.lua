-- Commits on distinct keys: arguments <key prefix> <payload>.
-- A thread keeps one key per connection it may have in flight. request() takes a free key and
-- posts its next version; response() reads the key back from the answer (the metadata JSON, or
-- the 409's conflict body) and frees it. A connection has one request in flight and frees its
-- key before it asks for the next, so with N connections N keys never run out, no two requests
-- in flight share a key, and every key gets 1, 2, 3, ... in order: every answer must be a 200.

local threads = {}

function setup(thread)
   thread:set("id", #threads + 1)
   table.insert(threads, thread)
end

local free = {}  -- stack of free keys
local next_version = {}
non200 = 0  -- globals: done() reads them with thread:get()
created = 0
local prefix, payload

function init(args)
   prefix = args[1] .. "-t" .. id .. "-"
   payload = args[2]
end

function request()
   local key = table.remove(free)
   if key == nil then
      created = created + 1
      key = prefix .. created
      next_version[key] = 1
   end
   local headers = {
      ["X-Rainer-Author"] = "bench",
      ["Content-Type"] = "text/plain",
   }
   return wrk.format("POST", "/diary/" .. key .. "/" .. next_version[key], headers, payload)
end

function response(status, headers, body)
   local key
   if status == 200 then
      key = body:match('"key":"([^"]*)"')
      next_version[key] = next_version[key] + 1
   else
      non200 = non200 + 1
      key = body:match('"key":"([^"]*)"')
      local expected = body:match('"expectedVersion":(%d+)')
      if key == nil or next_version[key] == nil then
         return  -- not ours to resync (e.g. a 500 with a text body): the key stays taken
      end
      if expected then
         next_version[key] = tonumber(expected)
      end
   end
   table.insert(free, key)
end

function extra()
   local total_non200, keys = 0, 0
   for _, thread in ipairs(threads) do
      total_non200 = total_non200 + thread:get("non200")
      keys = keys + thread:get("created")
   end
   return { non200 = total_non200, keys = keys }
end
