-- wrk script for benches/serve.py: what to send, and one JSON line of results at the end.
--
-- Chosen by environment variables (read at the top level, so that wrk knows before it starts
-- whether requests are static or built per request):
--   SERVE_BENCH_MODE=get                      GET the URL (the load-generator ceiling); the default
--   SERVE_BENCH_MODE=json   SERVE_BENCH_BODIES=FILE
--                                             POST one JSON body per line of FILE, round robin
--   SERVE_BENCH_MODE=binary SERVE_BENCH_BODY=FILE SERVE_BENCH_HEADER_LENGTH=N
--                                             POST FILE as is, with Inference-Header-Content-Length: N
--                                             (the OIP binary tensor data extension)
--   SERVE_BENCH_COUNT_STATUS=1                also count every response by status code (costs a Lua
--                                             call per response)
--
-- done() prints "WRK_JSON {...}": requests, duration and errors (wrk counts a status above 399 as a
-- status error), latency mean and percentiles in microseconds, and the status counts when asked.

local mode = os.getenv("SERVE_BENCH_MODE") or "get"
local count_status = os.getenv("SERVE_BENCH_COUNT_STATUS") == "1"

local function read_file(path)
   local f = assert(io.open(path, "rb"))
   local data = f:read("*a")
   f:close()
   return data
end

local bodies = {}

if mode == "get" then
   wrk.method = "GET"
elseif mode == "binary" then
   wrk.method = "POST"
   local path = assert(os.getenv("SERVE_BENCH_BODY"), "SERVE_BENCH_BODY is not set")
   wrk.body = read_file(path)
   wrk.headers["Content-Type"] = "application/octet-stream"
   wrk.headers["Inference-Header-Content-Length"] =
      assert(os.getenv("SERVE_BENCH_HEADER_LENGTH"), "SERVE_BENCH_HEADER_LENGTH is not set")
elseif mode == "json" then
   local path = assert(os.getenv("SERVE_BENCH_BODIES"), "SERVE_BENCH_BODIES is not set")
   for line in io.lines(path) do
      if #line > 0 then
         bodies[#bodies + 1] = line
      end
   end
   assert(#bodies > 0, "no bodies")
else
   error("unknown SERVE_BENCH_MODE " .. mode)
end

-- json mode: the requests are formatted once per thread in init(), then sent round robin.
local requests = {}
local next_index = 0

if mode == "json" then
   function request()
      next_index = next_index % #requests + 1
      return requests[next_index]
   end
end

local threads = {}

function setup(thread)
   thread:set("thread_index", #threads)
   threads[#threads + 1] = thread
end

statuses = {}

function init(args)
   if mode == "json" then
      local headers = { ["Content-Type"] = "application/json" }
      for i, body in ipairs(bodies) do
         requests[i] = wrk.format("POST", nil, headers, body)
      end
      -- each thread starts at a different body
      next_index = ((thread_index or 0) * 101) % #requests
   end
end

if count_status then
   function response(status, headers, body)
      statuses[status] = (statuses[status] or 0) + 1
   end
end

function done(summary, latency, requests)
   local e = summary.errors
   local parts = {
      string.format('"requests":%d,"duration_us":%d,"bytes":%d', summary.requests, summary.duration, summary.bytes),
      string.format('"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d}',
                    e.connect, e.read, e.write, e.status, e.timeout),
      string.format('"latency_us":{"mean":%.3f,"stdev":%.3f,"min":%d,"max":%d,"p50":%d,"p90":%d,"p99":%d,"p999":%d}',
                    latency.mean, latency.stdev, latency.min, latency.max, latency:percentile(50),
                    latency:percentile(90), latency:percentile(99), latency:percentile(99.9)),
   }
   if count_status then
      local total = {}
      for _, thread in ipairs(threads) do
         local counts = thread:get("statuses")
         for code, n in pairs(counts) do
            total[code] = (total[code] or 0) + n
         end
      end
      local items = {}
      for code, n in pairs(total) do
         items[#items + 1] = string.format('"%d":%d', code, n)
      end
      parts[#parts + 1] = '"statuses":{' .. table.concat(items, ",") .. "}"
   end
   io.write("WRK_JSON {" .. table.concat(parts, ",") .. "}\n")
end
