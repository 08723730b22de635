# bench/lib/netdata.sh: a private, local-only netdata set-up shared by the
# benchmarks that run netdata as a peer (source it; bash).
#
#   netdata_setup DIR MEASURE TITLE
#
# makes DIR/{etc,cache,lib,log,run}, picks free loopback ports with
# MEASURE (bench/overhead/measure.py) and writes DIR/etc/netdata.conf: every
# path under DIR, web and statsd on 127.0.0.1 only, no registry, alarm
# notifications to /bin/true, anonymous statistics opted out. Sets ND_PORT,
# ND_SPORT and ND_USER (netdata drops to this user: the caller chowns and
# makes the parent reachable). Append sections to the file to change more.
netdata_setup() {
    local d=$1 measure=$2 title=$3
    mkdir -p "$d/etc" "$d/cache" "$d/lib" "$d/log" "$d/run"
    ND_PORT=$(python3 "$measure" freeport)
    ND_SPORT=$(python3 "$measure" freeport)
    if [ "$(id -u)" -eq 0 ] && id netdata >/dev/null 2>&1; then ND_USER=netdata; else ND_USER=$(id -un); fi
    # netdata looks for this file in its config dir
    : >"$d/etc/.opt-out-from-anonymous-statistics"
    cat >"$d/etc/netdata.conf" <<EOF
# $title, everything local and temporary
[global]
	run as user = $ND_USER
	web files owner = root
	web files group = root
[directories]
	config = $d/etc
	cache = $d/cache
	home = $d/cache
	lib = $d/lib
	lock = $d/lib/lock
	log = $d/log
	registry = $d/lib/registry
	health config = $d/etc/health.d
[logs]
	debug = $d/log/debug.log
	error = $d/log/error.log
	access = $d/log/access.log
	health = $d/log/health.log
[web]
	bind to = 127.0.0.1:$ND_PORT
	default port = $ND_PORT
[registry]
	enabled = no
	registry to announce = http://127.0.0.1:$ND_PORT
[health]
	# alarms are still evaluated; notifications go nowhere
	script to execute on alarm = /bin/true
[statsd]
	bind to = udp:127.0.0.1 tcp:127.0.0.1
	default port = $ND_SPORT
EOF
}
