#!/usr/bin/env bats
# console.bats - the desktop in a browser tab: vm-console behind a real web
# server (lighttpd: basic auth, its proxy with the websocket upgrade),
# headless chromium running noVNC against the lab's real guest, vm-watch
# following QEMU's VNC events; the refusals, the limits and kill -9.

load helpers
bats_require_minimum_version 1.5.0

setup_file() {
	guest_image || return 1
	lab_suite_start 1
}

teardown_file() {
	lab_suite_stop
}

setup() {
	common_setup
	W=$BATS_TEST_TMPDIR
	SOCK=$W/console.sock
	cat >"$VDI_CONFIG" <<-EOF
	domain_type = qemu
	host_log_dir = $LAB/%h/log/qemu
	console_socket = $SOCK
	console_handshake_timeout = 2s
	EOF
	add_lab_hosts --network vdi
	vm-master -q add guest --image "$GUEST" --os linux --mem 192M --prepare none
	vm-copy -q --master guest alice bob
}

teardown() {
	local rc=0
	dump_logs_on_failure "$W/console.log" "$W/watch.log" "$W/web.err"
	assert_agree || rc=1
	stop_pidfile "$W/console.pid"
	stop_pidfile "$W/watch.pid"
	stop_pidfile "$W/web.pid"
	lab_clean
	return $rc
}

# console_start: vm-console on $SOCK, its output in console.log; waits until it listens.
console_start() {
	local i n
	n=$(grep -c "listening on $SOCK" "$W/console.log" 2>/dev/null) || true
	vm-console </dev/null >>"$W/console.log" 2>&1 3>&- &
	echo $! >"$W/console.pid"
	for ((i = 0; i < 100; i++)); do
		[ "$(grep -c "listening on $SOCK" "$W/console.log" 2>/dev/null || true)" -gt "${n:-0}" ] && return 0
		sleep 0.05
	done
	cat "$W/console.log" >&3
	return 1
}

# cgi USER METHOD [BODY]: vm-connect as the web server runs it, for USER; the answer on stdout.
cgi() {
	GATEWAY_INTERFACE=CGI/1.1 REMOTE_USER=$1 REQUEST_METHOD=$2 SCRIPT_NAME=/desktop \
		CONTENT_TYPE=application/x-www-form-urlencoded CONTENT_LENGTH=${#3} vm-connect <<<"${3:-}"
}

# ticket USER: press "Open in browser" on USER's page; sets SID and TICKET from the console page.
ticket() {
	local tok
	cgi "$1" GET >"$W/page.html" 2>>"$W/cgi.err"
	tok=$(grep -o 'name="action" value="console"><input type="hidden" name="token" value="[^"]*"' \
		"$W/page.html" | sed 's/.*value="//; s/"$//')
	[ -n "$tok" ] || { echo "# no Open in browser on $1's page" >&3; return 1; }
	cgi "$1" POST "action=console&token=$tok" >"$W/console.html" 2>>"$W/cgi.err"
	SID=$(grep -o 'data-session="[0-9]*"' "$W/console.html" | tr -dc 0-9)
	TICKET=$(grep -o 'data-ticket="[^"]*"' "$W/console.html" | sed 's/data-ticket="//; s/"$//')
	[ -n "$TICKET" ] || { sed 's/^/# /' "$W/console.html" >&3; return 1; }
}

# open_console SESSION TICKET USER [ORIGIN [HEADER...]]: a console through $SOCK, as the
# web server would pass it; prints the status (and the RFB server-init); one that opens
# is held open while $W/hold is there.
open_console() {
	HOLD=$W/hold timeout 60 python3 "$TOP/test/console.py" open "$SOCK" "$@" </dev/null
}

@test "a real browser: chromium signs in, opens the desktop in a tab through lighttpd and vm-console, and the canvas shows the guest's screen" {
	on_pg && skip "the browser meets the same relay on either engine: the VMDB's part is tested by the other tests here"
	printf 'disconnect_timeout = 2s\n' >>"$VDI_CONFIG"
	console_start
	watch_start
	WEB_CONSOLE=$SOCK web_start
	mkdir -p "$W/chromium" "$W/shots"
	# The guest's own screen says it is up before the pictures are compared.
	vm-start -q alice
	wait_console alice 'vdi-guest: ready'
	dom=$(sql "select domain from sessions where state = 'running'")
	run timeout -k 5 90 python3 "$TOP/test/browser_console.py" "$W/chromium" "$WEB" alice pw-alice "$W/shots" \
		-- virsh -q -c "$(lab_uri h1)" screenshot "$dom" --file
	[ "$status" -eq 0 ] || { echo "$output" >&3; tail -n 20 "$W/chromium/chromium.log" >&3; false; }
	grep '^first-frame-ms' <<<"$output" | sed 's/^/# /' >&3
	assert_line 'state connected'
	# What noVNC drew is what the desktop shows (virsh screenshot), pixel for pixel bar a blinking cursor.
	assert_line --regexp '^compare 720x400 same=(0\.9[7-9][0-9]|1\.000)$'
	# The console page: 44 px targets, labelled fields, keyboard reachable, fits a phone.
	assert_line --regexp '^measured 1280x900: targets=[0-9]+ min_height=(4[4-9]|[5-9][0-9]) unlabelled=0 unfocusable=0 overflow=false$'
	assert_line --regexp '^measured 390x844: targets=[0-9]+ min_height=(4[4-9]|[5-9][0-9]) unlabelled=0 unfocusable=0 overflow=false$'
	[ -z "${VDI_TEST_SHOTS:-}" ] || cp "$W/shots"/*.png "$VDI_TEST_SHOTS/"
	# The console was recorded, relayed through the web server (its Forwarded names alice and her address).
	assert_equal "$(sql "select username || ' ' || peer from consoles")" "alice 127.0.0.1"
	# The tab left: vm-console records the close, vm-watch the viewer gone (QEMU's VNC event) ...
	wait_sql "select coalesce(reason, '') from consoles" browser
	wait_sql "select case when disconnected_since is not null then 1 else 0 end from sessions where state = 'running'" 1
	grep -q 'viewer connected' "$W/watch.log"
	# ... and with disconnect_timeout (2 s, counted in whole seconds) the session ends as a SPICE
	# viewer's would, by cron's vm-reap (here every half second).
	for ((i = 0; i < 20; i++)); do
		vm-reap -q
		[ "$(sql "select state from sessions")" = ended ] && break
		sleep 0.5
	done
	assert_equal "$(sql "select state || ' ' || reason from sessions")" "ended disconnected"
}

@test "refusals: no, expired, spent, another user's ticket; a wrong Origin; plain HTTP; an ended session; a smuggled host; each with its status and nothing started" {
	console_start
	vm-start -q alice bob
	before=$(sql "select count(*) from sessions")
	ticket alice
	A_SID=$SID A_TICKET=$TICKET
	ticket bob
	B_SID=$SID B_TICKET=$TICKET
	run open_console "$A_SID" "" alice
	assert_output 'status 403'
	run open_console "$A_SID" "not-a-ticket" alice
	assert_output 'status 400'
	# bob's ticket presented by alice, for his session and for hers.
	run open_console "$B_SID" "$B_TICKET" alice
	assert_output 'status 403'
	run open_console "$A_SID" "$B_TICKET" bob
	assert_output 'status 403'
	# Another site's page may not open a console (cross-site websocket hijacking), nor one without an Origin.
	run open_console "$A_SID" "$A_TICKET" alice "https://evil.example"
	assert_output 'status 403'
	run open_console "$A_SID" "$A_TICKET" alice ""
	assert_output 'status 403'
	# No user from the web server: refused.
	run open_console "$A_SID" "$A_TICKET" ""
	assert_output 'status 403'
	# A host or a port in the URL is refused, not used; one in a header is ignored.
	run timeout 20 python3 -c "
import sys; sys.path.insert(0, '$TOP/test'); import console
s, st = console.upgrade('$SOCK', '$A_SID&host=10.0.0.1&port=22', '$A_TICKET', 'alice')
print('status', st)"
	assert_output 'status 400'
	# The ticket was spent by none of these (each was refused before its use): now it works, once.
	touch "$W/hold"
	open_console "$A_SID" "$A_TICKET" alice "http://vdi.example" "X-Forwarded-Host: 10.0.0.1:22" "X-Vdi-Port: 22" >"$W/first" 3>&- &
	held=$!
	wait_sql "select count(*) from consoles where closed is null" 1
	port=$(sql "select console_port from sessions where id = $A_SID")
	grep -q "relaying to h1 port $port" "$W/console.log"
	run open_console "$A_SID" "$A_TICKET" alice
	assert_output 'status 403'
	grep -q 'the console ticket was used before' "$W/console.log"
	rm -f "$W/hold"
	# shellcheck disable=SC2086
	wait $held
	assert_equal "$(head -n 2 "$W/first")" "status 101
server-init 720x400 QEMU ($(sql "select domain from sessions where id = $A_SID"))"
	# An expired ticket.
	printf 'console_ticket_ttl = 1s\n' >>"$VDI_CONFIG"
	ticket bob
	sleep 2.1
	run open_console "$SID" "$TICKET" bob
	assert_output 'status 403'
	grep -q 'the console ticket has expired' "$W/console.log"
	# A ticket of a session that ended.
	sed -i '/console_ticket_ttl/d' "$VDI_CONFIG"
	ticket bob
	vm-reap -q --user bob
	run open_console "$SID" "$TICKET" bob
	assert_output 'status 404'
	# A plain HTTP request, and a path that is not the console's.
	run python3 "$TOP/test/console.py" raw "$SOCK" 'GET /vdi-console HTTP/1.1\r\nHost: a\r\n\r\n'
	assert_output 'status 426'
	run python3 "$TOP/test/console.py" raw "$SOCK" 'GET /other HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nOrigin: http://a\r\n\r\n'
	assert_output 'status 404'
	# Nothing was started by any of it; one console was recorded, for alice, closed by its browser.
	assert_equal "$(sql "select count(*) from sessions")" "$before"
	assert_equal "$(sql "select username || ' ' || reason from consoles")" "alice browser"
	run_vdi vdi-db metrics
	assert_line 'vdi_browser_consoles_total 1'
	# Each refusal was one line.
	assert_equal "$(grep -c '^vm-console: refused' "$W/console.log")" 13
}

@test "limits: 1,000 junk connections at once, a client that never finishes, an oversized message, consoles per user; vm-console stays up" {
	printf 'console_max_frame = 4K\nconsole_per_user = 1\n' >>"$VDI_CONFIG"
	console_start
	vm-start -q alice
	ulimit -n 4096
	run timeout 90 python3 "$TOP/test/console.py" junk "$SOCK" 1000
	assert_output 'junk 1000 closed 1000'
	# A client that connects and says nothing is closed at the handshake timeout (2 s).
	run timeout 20 python3 -c "
import socket, time
s = socket.socket(socket.AF_UNIX); s.connect('$SOCK'); t = time.time(); s.settimeout(15)
print('closed' if s.recv(1) == b'' else 'data', round(time.time() - t))"
	assert_output --regexp '^closed [23]$'
	# One console for alice; a second is refused (429) while it is open.
	ticket alice
	T1=$TICKET
	ticket alice
	touch "$W/hold"
	open_console "$SID" "$T1" alice >"$W/first" 3>&- &
	held=$!
	wait_sql "select count(*) from consoles where closed is null" 1
	run open_console "$SID" "$TICKET" alice
	assert_output 'status 429'
	rm -f "$W/hold"
	# shellcheck disable=SC2086
	wait $held
	# A message larger than console_max_frame from the browser: closed 1009, recorded 'limit'.
	ticket alice
	run timeout 20 python3 -c "
import sys; sys.path.insert(0, '$TOP/test'); import console
s, st = console.upgrade('$SOCK', '$SID', '$TICKET', 'alice')
ws = console.WS(s); console.rfb(ws); ws.send(b'\x06' + bytes(8191))
try:
    while True: ws.frame()
except EOFError as e: print(e)"
	assert_output 'closed 1009'
	wait_sql "select reason from consoles order by id desc limit 1" limit
	# Still serving.
	kill -0 "$(cat "$W/console.pid")"
	ticket alice
	run open_console "$SID" "$TICKET" alice
	assert_line 'status 101'
}

@test "kill -9 vm-console with consoles open: the viewers see the close, the desktops run on, the disconnect is recorded and the next vm-console tidies up" {
	console_start
	watch_start
	vm-start -q alice bob
	ticket alice
	touch "$W/hold"
	open_console "$SID" "$TICKET" alice >"$W/a" 3>&- &
	held=$!
	ticket bob
	open_console "$SID" "$TICKET" bob >"$W/b" 3>&- &
	held="$held $!"
	wait_sql "select count(*) from consoles where closed is null" 2
	wait_sql "select count(*) from sessions where connected_since is not null and disconnected_since is null" 2
	kill -9 "$(cat "$W/console.pid")"
	wait_sql "select count(*) from sessions where disconnected_since is not null" 2
	rm -f "$W/hold"
	# shellcheck disable=SC2086
	wait $held
	grep -q '^ended: closed' "$W/a"
	grep -q '^ended: closed' "$W/b"
	assert_equal "$(sql "select count(*) from sessions where state = 'running'")" 2
	assert_equal "$(running_domains h1 | wc -l)" 2
	# vm-ls shows them open until a vm-console of this machine starts again: it closes them 'restart'.
	assert_equal "$(vm-ls --sessions -o tsv | cut -f 16 | sort -u)" 1
	console_start
	grep -q 'closed 2 consoles a relay of this machine left open' "$W/console.log"
	assert_equal "$(sql "select reason from consoles order by id")" "restart
restart"
	assert_equal "$(vm-ls --sessions -o tsv | cut -f 16 | sort -u)" 0
}

@test "the socket: a planted file is refused and left alone, a second vm-console is refused; console = no gives no display and no button" {
	printf 'planted\n' >"$SOCK"
	run -5 vm-console
	assert_output --partial 'is there and is not a socket'
	assert_equal "$(cat "$SOCK")" planted
	rm -f "$SOCK"
	console_start
	run -5 vm-console
	assert_output --partial 'another vm-console listens on'
	# The socket is the web server's alone: 0660.
	assert_equal "$(stat -c %a "$SOCK")" 660
	printf 'console = no\n' >>"$VDI_CONFIG"
	vm-start -q alice
	assert_equal "$(sql "select coalesce(console_port, 0) from sessions")" 0
	xml=$(virsh -q -c "$(lab_uri h1)" dumpxml "$(sql "select domain from sessions")")
	[[ $xml == *"graphics type='spice'"* && $xml != *"graphics type='vnc'"* ]]
	cgi alice GET >"$W/page.html"
	run grep -c 'Open in browser' "$W/page.html"
	assert_output 0
	grep -q 'Download for the viewer' "$W/page.html"
}
