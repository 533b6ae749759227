-- Stops wrk after WRK_REQUESTS answers, so that wrk does the same work as the clients given a
-- request count (bench/run's scenario 4). wrk has only a duration: with this hook it runs until
-- the count, with -d as a safety limit. Run it with one thread (-t1): each thread counts alone.
-- A response() hook makes wrk hand every answer to Lua, which wrk's docs say costs it speed.
local limit = tonumber(os.getenv("WRK_REQUESTS") or "")
local seen = 0

function response(status, headers, body)
   seen = seen + 1
   if limit and seen >= limit then
      wrk.thread:stop()
   end
end
