-- wrk script: POST /classify with single utterances from the dev sets (bench/wrk/utterances.jsonl,
-- one JSON body per line), rotating through them. No "tasks": every single-sentence task runs.
local bodies = {}
local file = assert(io.open(os.getenv("UTTERANCES") or "bench/wrk/utterances.jsonl", "r"))
for line in file:lines() do
  if #line > 0 then bodies[#bodies + 1] = line end
end
file:close()

local counter = 0
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"

request = function()
  counter = counter + 1
  return wrk.format(nil, nil, nil, bodies[(counter % #bodies) + 1])
end
