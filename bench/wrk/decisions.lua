-- wrk script: POST a rotating mix of requests; report JSON; keep the decision ids answered 200.
--   wrk -s bench/wrk/decisions.lua URL -- REQUESTS_FILE IDS_FILE
-- REQUESTS_FILE (written by bench/http_bench.py): one request per line, "<path>\t<api key>\t<json body>".
-- IDS_FILE: where the decision ids of every 200 answer are written, one per line, so the
-- benchmark can check afterwards that each is in the audit trail.
-- A body holding __DISTINCT__ gets a number there that no other request of the run gets
-- (http_bench.py --distinct: every request a new input).
local threads = {}

function setup(thread)
  threads[#threads + 1] = thread
  thread:set("thread_index", #threads)
end

function init(args)
  requests = {}
  templates = {}
  ids = {}
  statuses = {}
  distinct = 1000000 + thread_index * 10000000
  for line in io.lines(args[1]) do
    local path, key, body = line:match("^([^\t]+)\t([^\t]+)\t(.+)$")
    local headers = {["Authorization"] = "Bearer " .. key, ["Content-Type"] = "application/json"}
    if body:find("__DISTINCT__", 1, true) then
      templates[#requests + 1] = {path, headers, body}
    end
    requests[#requests + 1] = wrk.format("POST", path, headers, body)
  end
  counter = math.random(#requests)
  ids_file = args[2]
end

function request()
  counter = counter % #requests + 1
  local template = templates[counter]
  if template then
    distinct = distinct + 1
    local body = template[3]:gsub("__DISTINCT__", tostring(distinct))
    return wrk.format("POST", template[1], template[2], body)
  end
  return requests[counter]
end

function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
  if status == 200 then
    local id = body:match('"decision_id":"([^"]+)"')
    if id then ids[#ids + 1] = id end
  end
end

function done(summary, latency, _)
  local codes = {}
  local out = nil
  for _, thread in ipairs(threads) do
    local path = thread:get("ids_file")
    if path and not out then out = io.open(path, "w") end
    for _, id in ipairs(thread:get("ids")) do out:write(id, "\n") end
    for code, n in pairs(thread:get("statuses")) do codes[code] = (codes[code] or 0) + n end
  end
  if out then out:close() end
  local parts = {}
  for code, n in pairs(codes) do parts[#parts + 1] = string.format('"%d": %d', code, n) end
  io.write(string.format(
    'WRK_JSON {"requests": %d, "duration_us": %d, "errors": {"connect": %d, "read": %d, "write": %d, "timeout": %d, "status": %d}, ' ..
    '"latency_us": {"p50": %d, "p95": %d, "p99": %d, "max": %d, "mean": %.1f}, "statuses": {%s}}\n',
    summary.requests, summary.duration, summary.errors.connect, summary.errors.read, summary.errors.write,
    summary.errors.timeout, summary.errors.status, latency:percentile(50), latency:percentile(95),
    latency:percentile(99), latency.max, latency.mean, table.concat(parts, ", ")))
end
