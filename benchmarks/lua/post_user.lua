-- POST {prefix}/Users with a new user per request. BENCH_BODY_FILE holds a user document whose
-- "@@N@@" markers are replaced by BENCH_TAG and a counter, so userName and e-mail are unique.
dofile(os.getenv("BENCH_LUA_DIR") .. "/common.lua")

local template, headers
local n = 0

function init(args)
  template = read_file(os.getenv("BENCH_BODY_FILE"))
  headers = bench_headers("application/scim+json")
end

function request()
  n = n + 1
  local body = template:gsub("@@N@@", TAG .. "t" .. (id or 0) .. "n" .. n)
  return wrk.format("POST", PREFIX .. "/Users", headers, body)
end
