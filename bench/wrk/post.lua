-- Static POST: wrk.method, wrk.body and wrk.headers come from the arguments
--   <content-type> <body>   (used for etcd's JSON gateway: /v3/kv/range and /v3/kv/put)
function init(args)
   wrk.method = "POST"
   wrk.headers["Content-Type"] = args[1]
   wrk.body = args[2]
end
