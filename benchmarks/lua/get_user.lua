-- GET {prefix}/Users/{random id}; ids come from BENCH_IDS_FILE, one per line.
dofile(os.getenv("BENCH_LUA_DIR") .. "/common.lua")

local ids, headers

function init(args)
  seed()
  ids = read_lines(os.getenv("BENCH_IDS_FILE"))
  headers = bench_headers()
end

function request()
  return wrk.format("GET", PREFIX .. "/Users/" .. ids[math.random(#ids)], headers)
end
