-- PATCH {prefix}/Users/{random id}: replace BENCH_PATCH_PATH (default displayName) with a new
-- text each time. Ids come from BENCH_IDS_FILE.
dofile(os.getenv("BENCH_LUA_DIR") .. "/common.lua")

local ids, headers
local n = 0
local path = os.getenv("BENCH_PATCH_PATH") or ""
if path == "" then
  path = "displayName"
end

function init(args)
  seed()
  ids = read_lines(os.getenv("BENCH_IDS_FILE"))
  headers = bench_headers("application/scim+json")
end

function request()
  n = n + 1
  local body = '{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],'
    .. '"Operations":[{"op":"replace","path":"' .. path .. '","value":"Patched ' .. n .. '"}]}'
  return wrk.format("PATCH", PREFIX .. "/Users/" .. ids[math.random(#ids)], headers, body)
end
