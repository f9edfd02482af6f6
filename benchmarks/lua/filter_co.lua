-- GET {prefix}/Users?filter=<BENCH_ATTRIBUTE> co "<random needle>"; every other request
-- upper-cases the needle (the attributes searched are case-insensitive). Needles come from
-- BENCH_NEEDLES_FILE (one per line), the operator from BENCH_OPERATOR (default co).
dofile(os.getenv("BENCH_LUA_DIR") .. "/common.lua")

local needles, headers, attribute, operator
local n = 0

function init(args)
  seed()
  needles = read_lines(os.getenv("BENCH_NEEDLES_FILE"))
  attribute = os.getenv("BENCH_ATTRIBUTE") or "userName"
  operator = os.getenv("BENCH_OPERATOR") or "co"
  headers = bench_headers()
end

function request()
  n = n + 1
  local needle = needles[math.random(#needles)]
  if n % 2 == 0 then
    needle = string.upper(needle)
  end
  local filter = urlencode(attribute .. " " .. operator .. ' "' .. needle .. '"')
  return wrk.format("GET", PREFIX .. "/Users?filter=" .. filter, headers)
end
