-- restart_if_slow.lua: proposes "restart" for a service whose probe
-- latency is above a threshold. The proposal goes through the safety
-- policy (allowlist, rate limits, the service's mode): the verdict is
-- returned, nothing runs behind the policy's back.
--
--   ippoc tool run restart_if_slow service=web [threshold_ms=500]
--       [metric=probe.latency_ms]
-- (ippocd keeps no probe-latency series itself yet: name the series that
-- holds the service's latency, labelled service=NAME, with metric=.)
local T
T = {
  name = "restart_if_slow",
  description = "proposes restart for a service whose probe latency metric is above threshold_ms",

  run = function(args)
    local service = args.service
    if type(service) ~= "string" or service == "" then
      error("service=NAME is required")
    end
    local threshold = tonumber(args.threshold_ms) or 500
    local metric = args.metric or "probe.latency_ms"
    local latency = ippoc.metric(metric, {service = service})
    if latency == nil then
      return {service = service, proposed = false, reason = "no " .. metric .. " for " .. service}
    end
    if latency <= threshold then
      return {service = service, latency_ms = latency, proposed = false,
              reason = string.format("%.0f ms is within %g ms", latency, threshold)}
    end
    local why = string.format("probe latency %.0f ms above %g ms", latency, threshold)
    local verdict = ippoc.propose(service, "restart", why)
    ippoc.log("proposed restart of " .. service .. ": " .. verdict)
    return {service = service, latency_ms = latency, proposed = true, verdict = verdict}
  end,

  tests = {
    slow_service_is_restarted = function()
      ippoc.metric = function(name, labels)
        assert(name == "probe.latency_ms" and labels.service == "web")
        return 1800
      end
      local asked
      ippoc.propose = function(svc, action, why)
        asked = {svc, action, why}
        return "execute"
      end
      local r = T.run({service = "web", threshold_ms = 1000})
      assert(r.proposed and r.verdict == "execute")
      assert(asked[1] == "web" and asked[2] == "restart" and asked[3]:find("1800", 1, true))
    end,
    fast_service_is_left_alone = function()
      ippoc.metric = function() return 120 end
      ippoc.propose = function() error("must not propose") end
      local r = T.run({service = "web"})
      assert(r.proposed == false)
    end,
    no_metric_no_action = function()
      ippoc.metric = function() return nil end
      ippoc.propose = function() error("must not propose") end
      assert(T.run({service = "db"}).proposed == false)
    end,
    service_is_required = function()
      local ok, err = pcall(T.run, {})
      assert(not ok and tostring(err):find("service=NAME", 1, true))
    end,
  },
}
return T
