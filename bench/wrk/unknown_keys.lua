-- wrk script: GET /v1/policy with a new, well-formed API key that no one holds on every request
-- (bench/key_flood.py): each key id is new, so no cached refusal answers it and the service
-- must look it up in the database.
--   wrk -s bench/wrk/unknown_keys.lua URL
local threads = {}
local hex = "0123456789abcdef"
local urlsafe = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"

function setup(thread)
  threads[#threads + 1] = thread
  thread:set("thread_index", #threads)
end

function init(args)
  math.randomseed(os.time() * 1000 + thread_index)
end

local function random_text(chars, n)
  local out = {}
  for i = 1, n do
    local k = math.random(#chars)
    out[i] = chars:sub(k, k)
  end
  return table.concat(out)
end

function request()
  local key = "clr_" .. random_text(hex, 16) .. "_" .. random_text(urlsafe, 43)
  return wrk.format("GET", "/v1/policy", {["Authorization"] = "Bearer " .. key})
end
