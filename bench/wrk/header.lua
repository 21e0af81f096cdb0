-- GET with one extra request header: arguments <name> <value>
-- (bench/security_bench.py sends "Authorization" "Bearer TOKEN" on every request).
function init(args)
   wrk.headers[args[1]] = args[2]
end
