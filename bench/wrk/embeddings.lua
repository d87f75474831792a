-- wrk script: POST /v1/embeddings with the single utterances of bench/wrk/utterances.jsonl (the same
-- texts as classify.lua), one text per request, rotating through them.
local bodies = {}
local file = assert(io.open(os.getenv("UTTERANCES") or "bench/wrk/utterances.jsonl", "r"))
for line in file:lines() do
  if #line > 0 then
    local body = line:gsub('^{"text":', '{"model":"embedding","input":', 1)
    bodies[#bodies + 1] = body
  end
end
file:close()

local counter = 0
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"

request = function()
  counter = counter + 1
  return wrk.format(nil, nil, nil, bodies[(counter % #bodies) + 1])
end
