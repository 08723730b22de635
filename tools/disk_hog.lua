-- disk_hog.lua: finds the fullest filesystem from the fs.used_percent
-- metric and reports it; above the threshold it says so, and changes
-- nothing (no "clean" is proposed: a person decides what to delete).
--
--   ippoc tool run disk_hog [threshold=90] [mounts=/,/var,/home]
local T
T = {
  name = "disk_hog",
  description = "the fullest filesystem (fs.used_percent) and whether it is above a threshold; reports only",

  run = function(args)
    local threshold = tonumber(args.threshold) or 90
    local mounts = {}
    for m in string.gmatch(args.mounts or "/,/var,/home,/tmp,/srv,/boot", "[^,]+") do
      mounts[#mounts + 1] = m
    end
    local fullest, used = nil, -1
    local seen = {}
    for _, m in ipairs(mounts) do
      local v = ippoc.metric("fs.used_percent", {mountpoint = m})
      if v then
        seen[#seen + 1] = {mount = m, used_percent = v}
        if v > used then fullest, used = m, v end
      end
    end
    if not fullest then
      return {found = false, reason = "no fs.used_percent for " .. table.concat(mounts, ", ")}
    end
    local over = used > threshold
    if over then
      ippoc.log(string.format("%s is %.1f%% full (threshold %g%%): look for what grew", fullest, used, threshold))
    end
    return {found = true, mount = fullest, used_percent = used, threshold = threshold,
            over = over, filesystems = seen}
  end,

  tests = {
    picks_the_fullest = function()
      local full = {["/"] = 40, ["/var"] = 97.5, ["/home"] = 60}
      ippoc.metric = function(name, labels)
        assert(name == "fs.used_percent")
        return full[labels.mountpoint]
      end
      local r = T.run({})
      assert(r.found and r.mount == "/var", "fullest is /var, got " .. tostring(r.mount))
      assert(r.over == true and r.used_percent == 97.5)
      assert(#r.filesystems == 3)
    end,
    below_threshold_is_quiet = function()
      ippoc.metric = function() return 50 end
      local logged = 0
      ippoc.log = function() logged = logged + 1 end
      local r = T.run({threshold = 80, mounts = "/,/var"})
      assert(r.found and not r.over)
      assert(logged == 0)
    end,
    never_proposes = function()
      ippoc.metric = function() return 99 end
      ippoc.propose = function() error("disk_hog must only report") end
      local r = T.run({})
      assert(r.over)
    end,
    no_metrics = function()
      ippoc.metric = function() return nil end
      local r = T.run({mounts = "/data"})
      assert(r.found == false and r.reason:find("/data", 1, true))
    end,
  },
}
return T
