-- GET {prefix}/Users?filter=userName eq "<random existing userName>"; every other request
-- upper-cases the userName (userName is case-insensitive). Names come from BENCH_NAMES_FILE.
dofile(os.getenv("BENCH_LUA_DIR") .. "/common.lua")

local names, headers
local n = 0

function init(args)
  seed()
  names = read_lines(os.getenv("BENCH_NAMES_FILE"))
  headers = bench_headers()
end

function request()
  n = n + 1
  local name = names[math.random(#names)]
  if n % 2 == 0 then
    name = string.upper(name)
  end
  local filter = urlencode('userName eq "' .. name .. '"')
  return wrk.format("GET", PREFIX .. "/Users?filter=" .. filter, headers)
end
