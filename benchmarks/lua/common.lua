-- Shared helpers of the SCIM benchmark scripts, loaded with dofile().
-- Environment: BENCH_PREFIX (path of the SCIM root, e.g. "/scim" or ""), BENCH_AUTH
-- (Authorization header value, may be empty), BENCH_TAG (unique text for POSTed users),
-- BENCH_IDS_FILE, BENCH_NAMES_FILE, BENCH_BODY_FILE, BENCH_PATCH_PATH (inputs of the individual
-- scripts).

PREFIX = os.getenv("BENCH_PREFIX") or ""
TAG = os.getenv("BENCH_TAG") or "x"

function read_lines(path)
  local lines = {}
  for line in io.lines(path) do
    if line ~= "" then
      lines[#lines + 1] = line
    end
  end
  return lines
end

function read_file(path)
  local f = assert(io.open(path, "rb"))
  local text = f:read("*a")
  f:close()
  return text
end

function bench_headers(content_type)
  local headers = { ["Accept"] = "application/scim+json" }
  local auth = os.getenv("BENCH_AUTH")
  if auth and auth ~= "" then
    headers["Authorization"] = auth
  end
  if content_type then
    headers["Content-Type"] = content_type
  end
  return headers
end

function urlencode(text)
  return (text:gsub("[^%w%-%._~]", function(c)
    return string.format("%%%02X", string.byte(c))
  end))
end

-- Count the responses that are not 2xx, by status, in a string "status=count ..." that
-- done() collects from every thread (thread:get copies strings reliably).
local bad = {}
bench_bad = ""

function response(status, headers, body)
  if status < 200 or status > 299 then
    bad[status] = (bad[status] or 0) + 1
    local parts = {}
    for code, n in pairs(bad) do
      parts[#parts + 1] = code .. "=" .. n
    end
    bench_bad = table.concat(parts, " ")
  end
end

local threads = {}

function setup(thread)
  thread:set("id", #threads + 1)
  threads[#threads + 1] = thread
end

function done(summary, latency, requests)
  for _, thread in ipairs(threads) do
    print("BENCH_STATUS " .. (thread:get("bench_bad") or ""))
  end
end

function seed()
  math.randomseed(os.time() + (id or 0) * 7919)
end
