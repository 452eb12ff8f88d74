-- wrk: POST the JSON body in $BENCH_BODY to the URL, and count answers other than 200.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local file = assert(io.open(os.getenv("BENCH_BODY"), "rb"))
wrk.body = file:read("*a")
file:close()
