# helpers.bash - shared set-up for the bats suites.
#
# Every test gets its own VMDB and an empty config file, so the machine's
# /etc/vdi/vdi.conf never leaks in.  The VMDB is an SQLite file under the
# test's temp folder, or with VDI_TEST_DB=postgresql a database of its own on
# the run's PostgreSQL server (test/setup_suite.bash starts it, test/pg-server).
# Suites that need hosts start a lab once per file (lab_start in
# setup_file, lab_stop in teardown_file): real libvirtd daemons with the
# QEMU driver, see scripts/vdi-lab.  Daemons are started with fd 3 closed,
# or bats would wait for them.

TOP=$(cd "$BATS_TEST_DIRNAME/.." && pwd)
O=${O:-build}
export PATH="$TOP/$O/bin:$TOP/scripts:$PATH"

load /usr/lib/bats/bats-support/load.bash
load /usr/lib/bats/bats-assert/load.bash

common_setup() {
	if on_pg; then
		local name="t${BATS_SUITE_TEST_NUMBER}_$RANDOM"
		createdb -h "$VDI_TEST_PG" -U postgres "$name" || return 1
		export VDI_DB="host=$VDI_TEST_PG user=postgres dbname=$name"
	else
		export VDI_DB="$BATS_TEST_TMPDIR/vdi.db"
	fi
	export VDI_CONFIG="$BATS_TEST_TMPDIR/vdi.conf"
	: >"$VDI_CONFIG"
}

# on_pg: does this run keep its VMDBs on PostgreSQL (VDI_TEST_DB=postgresql)?
on_pg() {
	[ "${VDI_TEST_DB:-sqlite}" = postgresql ]
}

# sqlite_only WHY: skip a test about the SQLite file itself on a PostgreSQL run.
sqlite_only() {
	! on_pg || skip "SQLite only: $*"
}

# vmdb_made: has a command made the test's VMDB yet?
vmdb_made() {
	if on_pg; then
		[ "$(psql -X -q -At -d "$VDI_DB" -c "select to_regclass('vdi_meta') is not null" 2>/dev/null)" = t ]
	else
		[ -s "$VDI_DB" ]
	fi
}

# lab_start N: N lab hosts; sets LAB and writes $LAB/hosts (NAME<TAB>URI).
lab_start() {
	LAB=$(mktemp -d /tmp/vdi-lab.XXXXXX)
	export LAB
	vdi-lab start -n "${1:-3}" "$LAB" >"$LAB/hosts.tsv" 2>"$LAB/start.err" 3>&- || {
		cat "$LAB/start.err" >&3
		return 1
	}
}

lab_stop() {
	[ -n "${LAB:-}" ] || return 0
	vdi-lab stop "$LAB" >/dev/null 2>&1 3>&- || true
	rm -rf "$LAB"
}

# lab_uri hN: the URI of a lab host.
lab_uri() {
	awk -F'\t' -v h="$1" '$1 == h { print $2 }' "$LAB/hosts.tsv"
}

# add_lab_hosts [OPTIONS...]: register every lab host in the VMDB.
add_lab_hosts() {
	local n u
	while IFS=$'\t' read -r n u; do
		vm-hosts -q add "$n" "$u" "$@" || return 1
	done <"$LAB/hosts.tsv"
}

# sql QUERY: run a query on the test's VMDB (rows as a|b|c, as sqlite3 prints them).
sql() {
	if on_pg; then
		psql -X -q -At -F '|' -v ON_ERROR_STOP=1 -d "$VDI_DB" <<<"$1"
	else
		sqlite3 -batch -noheader "$VDI_DB" "$1"
	fi
}

# sql_list SEP QUERY: the query's rows (one value each) joined by SEP, in the
# query's order (what group_concat would say, on either engine).
sql_list() {
	sql "$2" | paste -sd "$1"
}

# vmdb_sum: a checksum of the VMDB's whole content, to show nothing changed.
vmdb_sum() {
	if on_pg; then
		pg_sum "$VDI_DB"
	else
		file_sum "$VDI_DB"
	fi
}

# pg_sum CONNINFO: a checksum of a PostgreSQL database's content (pg_dump's
# random \restrict keys left out).
pg_sum() {
	pg_dump -d "$1" --no-owner | grep -Ev '^\\(un)?restrict ' | sha256sum | cut -d' ' -f1
}

# hold_write_lock SECONDS: another process holds the VMDB's write lock for
# a while (SQLite: BEGIN IMMEDIATE; PostgreSQL: the advisory lock vdi-tools
# takes); its pid in $holder.  Returns once the lock is taken.
hold_write_lock() {
	if on_pg; then
		psql -X -q -d "$VDI_DB" -c "begin; select pg_advisory_xact_lock(1447315761); select pg_sleep($1); commit" \
			>/dev/null 3>&- &
	else
		sqlite3 "$VDI_DB" 'begin immediate; select 1;' ".shell sleep $1" 'commit;' >/dev/null 3>&- &
	fi
	holder=$!
	sleep 0.5
}

# hold_singleton NAME SECONDS: another process holds a singleton's lock
# (vdi_db_lock: "reap", "watch", "rebalance") for a while; its pid in
# $holder.  SQLite: flock on VMDB.NAME.lock; PostgreSQL: the advisory lock
# on (1447315761, FNV-1a of NAME), as lib/db/pg.c takes it.
hold_singleton() {
	if [[ $VDI_DB == *dbname=* || $VDI_DB == postgres* ]]; then
		local h=2166136261 i c
		for ((i = 0; i < ${#1}; i++)); do
			printf -v c '%d' "'${1:i:1}"
			h=$(( ((h ^ c) * 16777619) & 0xffffffff ))
		done
		(( h >= 2147483648 )) && h=$(( h - 4294967296 ))
		psql -X -q -d "$VDI_DB" -c "select pg_advisory_lock(1447315761, $h); select pg_sleep($2)" >/dev/null 3>&- &
	else
		# The subshell becomes the sleep that holds the lock: killing $holder lets go of it.
		(exec 9>"$VDI_DB.$1.lock" && flock 9 && exec sleep "$2") 3>&- &
	fi
	holder=$!
	sleep 0.5
}

# hung_socket PATH: a unix socket that accepts connections and never answers.
# Its pid goes to PATH.pid; stop it with stop_pidfile PATH.pid.
hung_socket() {
	python3 -c '
import socket, sys, time
s = socket.socket(socket.AF_UNIX)
s.bind(sys.argv[1])
s.listen(64)
conns = []
end = time.time() + 300
while time.time() < end:
    s.settimeout(1)
    try:
        conns.append(s.accept()[0])
    except OSError:
        pass
' "$1" </dev/null >/dev/null 2>&1 3>&- &
	echo $! >"$1.pid"
	local i
	for ((i = 0; i < 50; i++)); do
		[ -S "$1" ] && return 0
		sleep 0.1
	done
	return 1
}

stop_pidfile() {
	[ -s "$1" ] || return 0
	kill "$(cat "$1")" 2>/dev/null || true
	rm -f "$1"
}

# file_sum PATH: a checksum, to show a file was not touched.
file_sum() {
	sha256sum "$1" | cut -d' ' -f1
}

# httpd_start DIR NAME [--tls CERT KEY]: a real HTTP(S) server on 127.0.0.1
# serving DIR (test/httpd.py); sets NAME_PORT; pid in DIR/NAME.pid.
httpd_start() {
	local dir=$1 name=$2 i
	shift 2
	rm -f "$dir/$name.port"
	python3 "$TOP/test/httpd.py" "$dir" "$dir/$name.port" "$@" </dev/null >"$dir/$name.log" 2>&1 3>&- &
	echo $! >"$dir/$name.pid"
	for ((i = 0; i < 100; i++)); do
		[ -s "$dir/$name.port" ] && break
		sleep 0.05
	done
	[ -s "$dir/$name.port" ] || return 1
	printf -v "${name^^}_PORT" '%s' "$(cat "$dir/$name.port")"
	export "${name^^}_PORT"
}

# vol_exists NAME: is there a volume NAME in the lab's shared pool folder?
vol_exists() {
	[ -e "$LAB/pool/$1" ]
}

# run_vdi [STATUS] COMMAND [ARGS...]: run a command the way podman's
# run_podman does: under a timeout (VDI_TEST_TIMEOUT seconds, 120 by
# default), with its exit status checked (0 unless STATUS is given; '?'
# takes any).  Sets $status and $output like bats' run.
run_vdi() {
	local expect=0
	case "$1" in
	[0-9]* | '?')
		expect=$1
		shift
		;;
	esac
	run timeout -k 5 "${VDI_TEST_TIMEOUT:-120}" "$@"
	if [ "$status" -eq 124 ]; then
		echo "# timed out after ${VDI_TEST_TIMEOUT:-120} s: $*" >&3
		echo "$output" | sed 's/^/#   /' >&3
		return 1
	fi
	if [ "$expect" != '?' ] && [ "$status" -ne "$expect" ]; then
		echo "# exit $status, expected $expect: $*" >&3
		echo "$output" | sed 's/^/#   /' >&3
		return 1
	fi
}

# assert_agree: the VMDB, libvirt and the pool tell the same story.
#  - the capacity counters equal what the sessions that are not ended add up to;
#  - every running session's domain runs on its host, and every vdi- domain
#    running on a lab host belongs to a session on that host that is not ended;
#  - every session overlay in the pool belongs to a session that is not ended,
#    and every running session's overlay is there;
#  - every warm layer and image in the pool is a user VM's, a live build's or
#    a live session's, and every warm user VM has both;
#  - every ready home disk's volume is in the pool.
assert_agree() {
	local bad h d live ov
	vmdb_made || return 0
	bad=$(sql "select name || ': sessions ' || sessions || '/' || sessions_real || ', mem ' || mem_used ||
		'/' || mem_used_real || ', vcpus ' || vcpus_used || '/' || vcpus_used_real from host_usage_check
		where sessions <> sessions_real or mem_used <> mem_used_real or vcpus_used <> vcpus_used_real")
	[ -z "$bad" ] || { echo "# counters drifted: $bad" >&3; return 1; }
	[ -n "${LAB:-}" ] && [ -s "$LAB/hosts.tsv" ] || return 0
	while IFS=$'\t' read -r h _; do
		live=$(sql "select s.domain from sessions s join hosts h on h.id = s.host_id
			where h.name = '$h' and s.state <> 'ended' and s.domain is not null")
		for d in $(virsh -q -c "$(lab_uri "$h")" list --name 2>/dev/null | grep '^vdi-' || true); do
			grep -qxF "$d" <<<"$live" || { echo "# $h runs $d, which no live session there owns" >&3; return 1; }
		done
		for d in $(sql "select s.domain from sessions s join hosts h on h.id = s.host_id
			where h.name = '$h' and s.state = 'running'"); do
			virsh -q -c "$(lab_uri "$h")" domstate "$d" 2>/dev/null | grep -q running ||
				{ echo "# session domain $d is not running on $h" >&3; return 1; }
		done
	done <"$LAB/hosts.tsv"
	live=$(sql "select overlay from sessions where state <> 'ended' and overlay is not null")
	for ov in "$LAB"/pool/s[0-9]*-*.qcow2; do
		[ -e "$ov" ] || continue
		grep -qxF "${ov##*/}" <<<"$live" || { echo "# overlay ${ov##*/} has no live session" >&3; return 1; }
	done
	for ov in $(sql "select overlay from sessions where state = 'running'"); do
		[ -e "$LAB/pool/$ov" ] || { echo "# running session's overlay $ov is missing" >&3; return 1; }
	done
	# Warm files: each of a user VM's image, a live build, or a live session restored from it; each image whole.
	live=$(sql "select warm from uservms where warm is not null union select id from sessions where
		kind = 'warm' and state <> 'ended' union select warm from sessions where warm is not null and
		state <> 'ended'")
	for ov in "$LAB"/pool/w[0-9]*-*; do
		[ -e "$ov" ] || continue
		d=${ov##*/w}
		grep -qxF "${d%%-*}" <<<"$live" || { echo "# warm file ${ov##*/} belongs to nothing" >&3; return 1; }
	done
	for d in $(sql "select 'w' || warm || '-' || username from uservms where warm is not null"); do
		[ -s "$LAB/pool/$d.qcow2" ] && [ -s "$LAB/pool/$d.save" ] ||
			{ echo "# warm image $d is missing its layer or image" >&3; return 1; }
	done
	for d in $(sql "select volume from homes where state = 'ready'"); do
		[ -s "$LAB/pool/$d" ] || { echo "# volume $d of the VMDB is missing from the pool" >&3; return 1; }
	done
}

# lab_suite_start N [SIZE]: for setup_file: a lab of N hosts, and a blank
# qcow2 image $IMG/m.qcow2 of SIZE (32M) to import as a master.
lab_suite_start() {
	lab_start "$1" || return 1
	IMG=$(mktemp -d /tmp/vdi-img.XXXXXX)
	export IMG
	qemu-img create -q -f qcow2 "$IMG/m.qcow2" "${2:-32M}"
}

lab_suite_stop() {
	lab_stop
	[ -z "${IMG:-}" ] || rm -rf "$IMG"
}

# lab_clean: for teardown: every domain of the lab destroyed, every volume
# vdi-tools made removed from the shared pool, the pool's view refreshed.
lab_clean() {
	local h d
	while IFS=$'\t' read -r h _; do
		for d in $(virsh -q -c "$(lab_uri "$h")" list --name 2>/dev/null); do
			virsh -q -c "$(lab_uri "$h")" destroy "$d" >/dev/null 2>&1 || true
		done
	done <"$LAB/hosts.tsv"
	rm -f "$LAB"/pool/master-* "$LAB"/pool/user-* "$LAB"/pool/s[0-9]* "$LAB"/pool/w[0-9]* "$LAB"/pool/home-*
	# Session numbers start again with each test's VMDB: so would the consoles' logs.
	rm -f "$LAB"/h*/log/qemu/*.console.log
	virsh -q -c "$(lab_uri h1)" pool-refresh vdi >/dev/null 2>&1 || true
}

# running_domains HOST: the names of the domains running on a lab host.
running_domains() {
	virsh -q -c "$(lab_uri "$1")" list --name | grep . || true
}

# lab_test_setup: for setup: a fresh VMDB, every lab host added, and master
# m (64M, 1 vCPU) imported from $IMG/m.qcow2.
lab_test_setup() {
	common_setup
	add_lab_hosts
	vm-master -q add m --prepare none --image "$IMG/m.qcow2" --os linux --mem 64M --vcpus 1
}

# guest_image: the lab's real guest (scripts/mkguest) in $GUEST, built once
# per version of mkguest and kept in $VDI_GUEST_CACHE (/var/tmp/vdi-tools).
guest_image() {
	local dir=${VDI_GUEST_CACHE:-/var/tmp/vdi-tools} sum
	sum=$(sha256sum "$TOP/scripts/mkguest" | cut -c1-12)
	GUEST="$dir/guest-$sum.qcow2"
	export GUEST
	[ -s "$GUEST" ] && return 0
	mkdir -p "$dir"
	mkguest "$GUEST" >"$dir/mkguest.log" 2>&1 3>&- || { cat "$dir/mkguest.log" >&3; return 1; }
}

# console_of USER [N]: the serial console log of USER's Nth-newest domain (1: the newest).
console_of() {
	local f
	f=$(ls -t "$LAB"/h*/log/qemu/vdi-s*-"$1".console.log 2>/dev/null | sed -n "${2:-1}p")
	[ -n "$f" ] && printf '%s\n' "$f"
}

# wait_console USER PATTERN [SECONDS]: wait until USER's newest console shows PATTERN (grep -E).
wait_console() {
	local i f
	for ((i = 0; i < ${3:-90} * 4; i++)); do
		f=$(console_of "$1") && grep -qE "$2" "$f" 2>/dev/null && return 0
		sleep 0.25
	done
	echo "# no '$2' on the console of $1 within ${3:-90} s: ${f:-no console log}" >&3
	[ -n "${f:-}" ] && sed 's/^/#   /' "$f" | tail -n 20 >&3
	return 1
}

# wait_gone HOST DOMAIN [SECONDS]: wait until DOMAIN no longer runs on lab HOST.
wait_domain_gone() {
	local i
	for ((i = 0; i < ${3:-60} * 4; i++)); do
		virsh -q -c "$(lab_uri "$1")" domstate "$2" >/dev/null 2>&1 || return 0
		sleep 0.25
	done
	return 1
}

# The helpers below use $W (the test's folder) for their logs and pid files.

# dump_logs_on_failure FILE...: for teardown: a failed test shows the last
# lines of its daemons' logs, which bats deletes with the test's folder.
dump_logs_on_failure() {
	local f
	[ "${BATS_TEST_COMPLETED:-}" = 1 ] && return 0
	for f in "$@"; do
		[ -s "$f" ] || continue
		echo "# --- ${f##*/} (last 40 lines)" >&3
		tail -n 40 "$f" | sed 's/^/#   /' >&3
	done
}

# watch_start: vm-watch in the background, its log in $W/watch.log; waits until it watches every host.
watch_start() {
	local i
	vm-watch --rescan 1s </dev/null >>"$W/watch.log" 2>&1 3>&- &
	echo $! >"$W/watch.pid"
	for ((i = 0; i < 100; i++)); do
		[ "$(sql "select count(*) from hosts where watch_since is null")" = 0 ] && return 0
		sleep 0.1
	done
	cat "$W/watch.log" >&3
	return 1
}

# viewer_leaves SESSION: the viewer quits; waits until vm-watch records
# that nobody views SESSION.  Debian 12's spice-server (0.15.1) sometimes
# segfaults in QEMU's "SPICE Worker" thread when a client drops, and the
# desktop dies with it: that upstream crash, and only it (the domain's log
# says "reason=crashed" and the kernel logged a new SPICE Worker segfault),
# skips the test with the reason instead of failing it.
viewer_leaves() {
	local sid=$1 dom before
	dom=$(sql "select domain from sessions where id = $sid")
	before=$(dmesg 2>/dev/null | grep -c 'SPICE Worker.*segfault' || true)
	stop_pidfile "$W/viewer.pid"
	wait_sql "select case when disconnected_since is not null then 1 else 0 end from sessions where id = $sid" 1 && return 0
	if grep -qs 'shutting down, reason=crashed' "$LAB"/h*/log/qemu/"$dom".log &&
		[ "$(dmesg 2>/dev/null | grep -c 'SPICE Worker.*segfault' || true)" -gt "$before" ]; then
		skip "QEMU crashed when the viewer left (spice-server's SPICE Worker segfault, upstream)"
	fi
	return 1
}

# vmdb_on_small_fs: move the test's VMDB (and its kept WAL) onto a 4 MiB
# tmpfs of its own, DBFS, so a test can fill its disk (vmdb_fill) and free it
# (rm "$DBFS/fill"); small_fs_drop, in teardown, unmounts it.
vmdb_on_small_fs() {
	sqlite_only "the VMDB file on a small file system"
	DBFS=$(mktemp -d /tmp/vdi-dbfs.XXXXXX)
	mount -t tmpfs -o size=4m tmpfs "$DBFS"
	cp "$VDI_DB" "$VDI_DB-wal" "$DBFS/" # the VMDB keeps its WAL between commands
	export VDI_DB=$DBFS/${VDI_DB##*/}
}
vmdb_fill() {
	dd if=/dev/zero of="$DBFS/fill" bs=4k 2>/dev/null || true
}
small_fs_drop() {
	[ -n "${DBFS:-}" ] || return 0
	umount "$DBFS" 2>/dev/null || true
	rmdir "$DBFS" 2>/dev/null || true
}

# wait_sql QUERY VALUE [SECONDS]: until the query answers VALUE.
wait_sql() {
	local i
	for ((i = 0; i < ${3:-20} * 10; i++)); do
		[ "$(sql "$1")" = "$2" ] && return 0
		sleep 0.1
	done
	echo "# '$1' is '$(sql "$1")', not '$2'" >&3
	return 1
}

# viewer VV: remote-viewer on VV under Xvfb.
viewer() {
	[ -s "$W/xvfb.pid" ] || {
		XDISP=:$((100 + RANDOM % 100))
		Xvfb "$XDISP" -screen 0 800x600x24 -nolisten tcp </dev/null >"$W/xvfb.log" 2>&1 3>&- &
		echo $! >"$W/xvfb.pid"
		sleep 1
	}
	DISPLAY=$XDISP remote-viewer --debug "$1" </dev/null >>"$W/viewer.log" 2>&1 3>&- &
	echo $! >"$W/viewer.pid"
}

# web_start [2]: lighttpd on a free port of 127.0.0.1 runs vm-connect at
# /desktop for alice, bob and carol (password "pw-USER"); sets WEB.  With 2, a
# second web server (a second broker on the same VMDB): files web2.*, sets WEB2.
# With WEB_CONSOLE set (vm-console's socket), it also proxies /vdi-console
# there (the websocket upgrade, the user in Forwarded) and serves noVNC at
# /novnc, as vm-console(1) shows.
web_start() {
	local port u i n=${1:-}
	port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
	for u in alice bob carol; do
		printf '%s:%s\n' "$u" "$(openssl passwd -apr1 "pw-$u")"
	done >"$W/htpasswd"
	mkdir -p "$W/www"
	cat >"$W/lighttpd$n.conf" <<-CONF
	server.document-root = "$W/www"
	server.bind = "127.0.0.1"
	server.port = $port
	server.errorlog = "$W/web$n.err"
	server.breakagelog = "$W/cgi$n.err"
	server.modules = ("mod_auth", "mod_authn_file", "mod_alias", "mod_setenv", "mod_cgi", "mod_proxy")
	auth.backend = "htpasswd"
	auth.backend.htpasswd.userfile = "$W/htpasswd"
	auth.require = ("/" => ("method" => "basic", "realm" => "desktops", "require" => "valid-user"))
	alias.url = ("/desktop" => "$TOP/$O/bin/vm-connect", "/novnc/" => "/usr/share/novnc/")
	cgi.assign = ("/vm-connect" => "")
	setenv.add-environment = ("VDI_DB" => "$VDI_DB", "VDI_CONFIG" => "$VDI_CONFIG")
	mimetype.assign = (".js" => "text/javascript", ".css" => "text/css", ".html" => "text/html")
	CONF
	[ -z "${WEB_CONSOLE:-}" ] || cat >>"$W/lighttpd$n.conf" <<-CONF
	\$HTTP["url"] =^ "/vdi-console" {
		proxy.server = ("" => (("socket" => "$WEB_CONSOLE")))
		proxy.header = ("upgrade" => "enable")
		proxy.forwarded = ("for" => 1, "remote_user" => 1)
	}
	CONF
	lighttpd -D -f "$W/lighttpd$n.conf" </dev/null >"$W/web$n.out" 2>&1 3>&- &
	echo $! >"$W/web$n.pid"
	printf -v "WEB$n" '%s' "http://127.0.0.1:$port/desktop"
	for ((i = 0; i < 100; i++)); do
		curl -s -o /dev/null "http://127.0.0.1:$port/desktop" && return 0
		sleep 0.05
	done
	cat "$W/web$n.out" "$W/web$n.err" >&3
	return 1
}
