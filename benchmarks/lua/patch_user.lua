-- PATCH {prefix}/Users/{random id}: replace displayName. Ids come from BENCH_IDS_FILE.
dofile(os.getenv("BENCH_LUA_DIR") .. "/common.lua")

local ids, headers
local n = 0

function init(args)
  seed()
  ids = read_lines(os.getenv("BENCH_IDS_FILE"))
  headers = bench_headers("application/scim+json")
end

function request()
  n = n + 1
  local body = '{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],'
    .. '"Operations":[{"op":"replace","path":"displayName","value":"Patched ' .. n .. '"}]}'
  return wrk.format("PATCH", PREFIX .. "/Users/" .. ids[math.random(#ids)], headers, body)
end
