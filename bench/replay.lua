-- Replays the requests listed in a file; used by bench/wrk.py.
--
-- wrk -tTHREADS ... -s replay.lua URL -- FILE MODE LIMIT THREADS
--   FILE   records "METHOD<TAB>PATH<TAB>BODY_BYTES\n" followed by the body and "\n"
--   MODE   cycle:  each thread goes round the list, starting at its own offset
--          once:   the threads share the list out and stop when their part is sent
--          random: each request is picked at random (seeded per thread)
--   LIMIT  stop each thread after this many responses (0: only the duration limits)
--   THREADS the -t given to wrk (a thread's own state cannot see it)
-- A thread that stops prints "BENCH-THREAD-DONE"; done() prints one line "BENCH-RESULT {json}" with counts, latency percentiles and statuses.

local threads = {}
local next_id = 0

function setup(thread)
   thread:set("id", next_id)
   next_id = next_id + 1
   table.insert(threads, thread)
end

local requests = {}
local mode, limit, position, threads_count, share
local answered = 0
local stopped = false
statuses = {}

local function load(path)
   local file = assert(io.open(path, "rb"))
   local data = file:read("*a")
   file:close()
   local at = 1
   local headers = {["Authorization"] = "Bearer bench-key"}
   while at <= #data do
      local line_end = data:find("\n", at, true)
      local method, target, size = data:sub(at, line_end - 1):match("^(%u+)\t(%S+)\t(%d+)$")
      size = tonumber(size)
      local body = nil
      if size > 0 then
         body = data:sub(line_end + 1, line_end + size)
         headers["Content-Type"] = "application/json"
      else
         headers["Content-Type"] = nil
      end
      table.insert(requests, wrk.format(method, target, headers, body))
      at = line_end + size + 2
   end
end

function init(args)
   load(args[1])
   mode = args[2] or "cycle"
   limit = tonumber(args[3] or "0")
   threads_count = tonumber(args[4] or "1")
   -- "id" is this thread's global, set by setup()
   position = id
   share = math.floor((#requests - id - 1) / threads_count) + 1
   math.randomseed(12345 + 7919 * id)
end

function request()
   local index
   if mode == "random" then
      index = math.random(#requests)
   else
      index = position % #requests + 1
      position = position + threads_count
   end
   return requests[index]
end

function response(status, headers, body)
   statuses[status] = (statuses[status] or 0) + 1
   answered = answered + 1
   if not stopped and ((limit > 0 and answered >= limit) or (mode == "once" and answered >= share)) then
      stopped = true
      -- wrk itself waits out its -d duration; this tells bench/load.py to interrupt it.
      io.write("BENCH-THREAD-DONE\n")
      io.flush()
      wrk.thread:stop()
   end
end

function done(summary, latency, requests_stats)
   local total = {}
   for _, thread in ipairs(threads) do
      for status, count in pairs(thread:get("statuses")) do
         total[status] = (total[status] or 0) + count
      end
   end
   local parts = {}
   for status, count in pairs(total) do
      table.insert(parts, string.format('"%d":%d', status, count))
   end
   local errors = summary.errors
   io.write(string.format(
      'BENCH-RESULT {"requests":%d,"duration_us":%d,"bytes":%d,' ..
      '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
      '"latency_us":{"p50":%d,"p90":%d,"p99":%d,"max":%d,"mean":%.1f},"statuses":{%s}}\n',
      summary.requests, summary.duration, summary.bytes,
      errors.connect, errors.read, errors.write, errors.status, errors.timeout,
      latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
      latency.mean, table.concat(parts, ",")))
end
