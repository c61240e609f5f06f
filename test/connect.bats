#!/usr/bin/env bats
# connect.bats - users come and go on their own: vm-connect behind a real
# web server (lighttpd, basic auth from an htpasswd file), remote-viewer
# under Xvfb and headless chromium as the users' clients, vm-watch
# following libvirt's events, vm-reap applying the disconnect policy.

load helpers
bats_require_minimum_version 1.5.0

setup_file() {
	lab_suite_start 2
}

teardown_file() {
	lab_suite_stop
}

setup() {
	lab_test_setup
	W=$BATS_TEST_TMPDIR
	# Short timeouts so the policy shows within a test; the defaults are in vdi.conf(5).
	printf 'ticket_ttl = 8s\n' >"$VDI_CONFIG"
	vm-copy -q --master m alice bob
}

# The VMDB, libvirt and the pool must agree as the test left them: checked
# before the viewer is stopped, as a viewer dropping can crash QEMU
# (viewer_leaves), and a failure here fails the test.
teardown() {
	local rc=0
	dump_logs_on_failure "$W/watch.log" "$W/watch2.log" "$W/viewer.log" "$W/replay.log" "$W/web.err" "$W/cgi.err"
	assert_agree || rc=1
	stop_pidfile "$W/viewer.pid"
	stop_pidfile "$W/xvfb.pid"
	stop_pidfile "$W/watch.pid"
	stop_pidfile "$W/watch2.pid"
	stop_pidfile "$W/web.pid"
	stop_pidfile "$W/web2.pid"
	lab_clean
	return $rc
}

# page USER: GET the page as USER, into $W/page.html; sets TOKEN to its Connect token.
page() {
	curl -sS -u "$1:pw-$1" -o "$W/page.html" -w '%{http_code}' "$WEB" >"$W/code"
	TOKEN=$(form_token connect)
}

# form_token ACTION: the token of the page's form for ACTION (connect, end, request), from $W/page.html.
form_token() {
	grep -o "name=\"action\" value=\"$1\"><input type=\"hidden\" name=\"token\" value=\"[^\"]*\"" \
		"$W/page.html" | sed 's/.*value="//; s/"$//'
}

# post USER BODY [URL]: POST a form as USER (to URL, $WEB by default); the status in $code, headers in $W/h, body in $W/b.
post() {
	code=$(curl -sS -u "$1:pw-$1" -D "$W/h" -o "$W/b" -w '%{http_code}' --data-raw "$2" "${3:-$WEB}")
}

@test "two brokers on one VMDB: a page from one and its Connect answered by the other work together; a spent token is spent for both" {
	web_start
	web_start 2
	# alice's page from broker 1, her Connect to broker 2.
	page alice
	post alice "action=connect&token=$TOKEN" "$WEB2"
	assert_equal "$code" 200
	grep -qi '^Content-Type: application/x-virt-viewer' "$W/h"
	local pw1
	pw1=$(sed -n 's/^password=//p' "$W/b")
	# Connect again from the same page, to the other broker: the same session, a new one-time ticket.
	post alice "action=connect&token=$TOKEN" "$WEB"
	assert_equal "$code" 200
	[ "$(sed -n 's/^password=//p' "$W/b")" != "$pw1" ]
	assert_equal "$(sql "select count(*) from sessions")" 1
	# A log-off form is spent on first use (the token lives in the VMDB): sent again to either broker, refused.
	page alice
	local end
	end=$(form_token end)
	post alice "action=end&token=$end" "$WEB2"
	assert_equal "$code" 303
	post alice "action=end&token=$end" "$WEB"
	assert_equal "$code" 403
	grep -q 'Reload the page' "$W/b"
	assert_equal "$(sql "select state || ' ' || reason from sessions where id = 1")" "ended logoff"
	# bob the other way round; one session each, once.
	local t
	t=$(curl -sS -u bob:pw-bob "$WEB2" | grep -o 'name="action" value="connect"><input type="hidden" name="token" value="[^"]*"' |
		sed 's/.*value="//; s/"$//')
	post bob "action=connect&token=$t" "$WEB"
	assert_equal "$code" 200
	assert_equal "$(sql_list , "select u.username || ':' || s.state from sessions s join uservms u on u.id = s.uservm_id
		order by s.id")" "alice:ended,bob:running"
}

@test "no authentication gets 401; each user sees and starts only their own desktop" {
	web_start
	run curl -s -o /dev/null -w '%{http_code}' "$WEB"
	assert_output 401
	page alice
	assert_equal "$(cat "$W/code")" 200
	grep -q '<b id="user">alice</b>' "$W/page.html"
	grep -q 'Your desktop is ready' "$W/page.html"
	post alice "action=connect&token=$TOKEN"
	assert_equal "$code" 200
	grep -qi '^Content-Type: application/x-virt-viewer' "$W/h"
	grep -qi '^Content-Disposition: attachment' "$W/h"
	grep -qi '^Cache-Control: no-store' "$W/h"
	grep -qx 'delete-this-file=1' "$W/b"
	grep -qx 'title=alice (session 1 on h[12])' "$W/b"
	# The ticket: the .vv's password is the domain's, with an end 8 s from now.
	running_session_of alice
	pw=$(sed -n 's/^password=//p' "$W/b")
	virsh -q -c "$(lab_uri "$host")" dumpxml --security-info "$dom" >"$W/dom.xml"
	grep -q "passwd='$pw'" "$W/dom.xml"
	grep -q "passwdValidTo=" "$W/dom.xml"
	local left=$(( $(sql "select ticket_expires from sessions where id = 1") - $(date +%s) ))
	[ "$left" -ge 5 ] && [ "$left" -le 8 ]
	# bob's page shows bob's desktop only, and his Connect starts his, not alice's.
	page bob
	grep -q '<b id="user">bob</b>' "$W/page.html"
	grep -q 'Your desktop is ready' "$W/page.html"
	! grep -q alice "$W/page.html"
	post bob "action=connect&token=$TOKEN"
	assert_equal "$code" 200
	grep -q '^title=bob ' "$W/b"
	assert_equal "$(sql_list , "select u.username from sessions s join uservms u on u.id = s.uservm_id
		where s.state = 'running' order by s.id")" alice,bob
	# A REMOTE_USER that is no user name, or none: 403, never a default user.
	run --separate-stderr env -i GATEWAY_INTERFACE=CGI/1.1 REQUEST_METHOD=GET VDI_DB="$VDI_DB" VDI_CONFIG="$VDI_CONFIG" "$TOP/$O/bin/vm-connect"
	assert_line --index 0 $'Status: 403 Forbidden\r'
	run --separate-stderr env -i GATEWAY_INTERFACE=CGI/1.1 REQUEST_METHOD=GET REMOTE_USER=$'<b>\x1b[31m' VDI_DB="$VDI_DB" \
		VDI_CONFIG="$VDI_CONFIG" "$TOP/$O/bin/vm-connect"
	assert_line --index 0 $'Status: 403 Forbidden\r'
	[[ $stderr == *'REMOTE_USER is not a valid user name'* ]]
}

# running_session_of USER: dom and host of USER's running session.
running_session_of() {
	dom=$(sql "select s.domain from sessions s join uservms u on u.id = s.uservm_id
		where u.username = '$1' and s.state = 'running'")
	host=$(sql "select h.name from sessions s join uservms u on u.id = s.uservm_id join hosts h on h.id = s.host_id
		where u.username = '$1' and s.state = 'running'")
	[ -n "$dom" ] && [ -n "$host" ]
}

@test "a replayed, cross-user, tokenless or malformed POST is refused with its status and changes nothing" {
	web_start
	page alice
	alice_token=$TOKEN
	before=$(sql "select count(*) from sessions")
	post bob "action=connect&token=$alice_token"
	assert_equal "$code" 403
	grep -q 'That form was out of date.* Reload the page, then try again' "$W/b"
	post bob "action=connect"
	assert_equal "$code" 403
	post bob "action=connect&token=${alice_token%?}0"
	assert_equal "$code" 403
	post bob "action=connect&token=x&token=y"
	assert_equal "$code" 400
	post bob "action=connect&evil=1&token=$alice_token"
	assert_equal "$code" 400
	post bob "action=rm&token=$alice_token"
	assert_equal "$code" 400
	post bob "action=connect%00&token=$alice_token"
	assert_equal "$code" 400
	code=$(curl -sS -u bob:pw-bob -o /dev/null -w '%{http_code}' -X PUT --data-raw x "$WEB")
	assert_equal "$code" 405
	code=$(curl -sS -u bob:pw-bob -o /dev/null -w '%{http_code}' -H 'Content-Type: text/plain' --data-raw x "$WEB")
	assert_equal "$code" 415
	code=$(curl -sS -u bob:pw-bob -o /dev/null -w '%{http_code}' --data-raw "action=connect&token=$(head -c 5000 /dev/zero | tr '\0' a)" "$WEB")
	assert_equal "$code" 413
	assert_equal "$(sql "select count(*) from sessions")" "$before"
	# alice's own Connect works, and again from the same page (one session, a new ticket each time).
	post alice "action=connect&token=$alice_token"
	assert_equal "$code" 200
	post alice "action=connect&token=$alice_token"
	assert_equal "$code" 200
	assert_equal "$(sql "select count(*) from sessions")" $((before + 1))
	# A request form sent twice is refused the second time.
	vm-copy -q --rm --force alice
	page alice
	local req
	req=$(form_token request)
	post alice "action=request&token=$req&master=m&mem=&disk="
	assert_equal "$code" 303
	post alice "action=request&token=$req&master=m&mem=&disk="
	assert_equal "$code" 403
	grep -q 'sent twice' "$W/b"
	assert_equal "$(sql "select count(*) from requests")" 1
	grep -q 'vm-connect: bob: refused connect: the form token is not yours' "$W/cgi.err"
}

@test "the errors a user meets are said in words: no desktop yet (404), being prepared and no room (503, Retry-After)" {
	web_start
	page carol
	grep -q 'You have no desktop yet' "$W/page.html"
	! grep -q 'id="connect"' "$W/page.html"
	# A page still open after the desktop was removed.
	page bob
	vm-copy -q --rm bob
	post bob "action=connect&token=$TOKEN"
	assert_equal "$code" 404
	grep -q 'You have no desktop yet' "$W/b"
	# No host has room.
	vm-hosts -q set h1 --max-sessions 0
	vm-hosts -q set h2 --max-sessions 0
	page alice
	post alice "action=connect&token=$TOKEN"
	assert_equal "$code" 503
	grep -qi '^Retry-After: 60' "$W/h"
	grep -q 'There is no room for your desktop right now' "$W/b"
	# The page does not contradict itself: not started, and the button says try again.
	grep -q 'Your desktop is not started' "$W/b"
	! grep -q 'ready to start' "$W/b"
	grep -q '<button type="submit">Try again</button>' "$W/b"
	assert_equal "$(sql "select count(*) from sessions where state <> 'ended'")" 0
	# Being prepared (its first boot runs).
	vm-copy -q --master m bob
	sql "update uservms set state = 'preparing' where username = 'bob'"
	page bob
	grep -q 'being prepared' "$W/page.html"
	! grep -q 'id="connect"' "$W/page.html"
	# It looks again by itself, without JavaScript.
	grep -q '<meta http-equiv="refresh" content="15">' "$W/page.html"
}

@test "a desktop request from the page is validated and recorded; vm-copy --requests lists and makes it" {
	web_start
	page carol
	tok=$(grep -o 'value="request"><input type="hidden" name="token" value="[^"]*"' "$W/page.html" | sed 's/.*value="//; s/"$//')
	[ -n "$tok" ]
	grep -q '<option value="m">m (linux' "$W/page.html"
	post carol "action=request&token=$tok&master=m&mem=lots&disk="
	assert_equal "$code" 400
	# Words that say what to type, not the parser's.
	grep -q 'Memory: type a size such as 4G or 512M, or leave it empty' "$W/b"
	! grep -q "invalid size" "$W/b"
	assert_equal "$(sql "select count(*) from requests")" 0
	# A home disk over what vdi.conf lets the page ask for (request_home_max, 10G by default).
	page carol
	grep -q 'Home disk for your files, kept between sessions (for example 5G, at most 10G; empty: as the system) <input name="home"' "$W/page.html"
	tok=$(grep -o 'value="request"><input type="hidden" name="token" value="[^"]*"' "$W/page.html" | sed 's/.*value="//; s/"$//')
	post carol "action=request&token=$tok&master=m&mem=128M&disk=1G&home=11G"
	assert_equal "$code" 400
	grep -q 'Home disk: type a size from 16M to 10G, such as 5G, or leave it empty.' "$W/b"
	assert_equal "$(sql "select count(*) from requests")" 0
	page carol
	tok=$(grep -o 'value="request"><input type="hidden" name="token" value="[^"]*"' "$W/page.html" | sed 's/.*value="//; s/"$//')
	post carol "action=request&token=$tok&master=m&mem=128M&disk=1G&home=64M"
	assert_equal "$code" 303
	grep -qi '^Location: /desktop' "$W/h"
	page carol
	grep -q 'You asked for a m desktop on <time datetime="[0-9T:-]*Z">[0-9: -]* UTC</time>. It is waiting' "$W/page.html"
	# No second request form, and the page looks again by itself.
	! grep -q 'id="request"' "$W/page.html"
	grep -q '<meta http-equiv="refresh"' "$W/page.html"
	run_vdi vm-copy --requests -o json
	assert_equal "$(jq -r '.[0].user + " " + .[0].master + " " + (.[0].mem|tostring) + " " + (.[0].disk|tostring) + " " + (.[0].home|tostring)' <<<"$output")" \
		"carol m 134217728 1073741824 67108864"
	run_vdi 3 vm-copy --requests --approve dave
	assert_output --partial 'dave: no pending request'
	run_vdi vm-copy --requests --approve carol
	assert_equal "$(sql "select state from requests where username = 'carol'")" done
	assert_equal "$(sql "select mem || ' ' || disk from uservms where username = 'carol'")" "134217728 1073741824"
	assert_equal "$(sql "select size from homes where username = 'carol'")" 67108864
	page carol
	grep -q 'Your desktop is ready' "$W/page.html"
	grep -q '<p id="version">Your desktop runs the system m, with a home disk of 64M: what you keep there stays' "$W/page.html"
	# A new version of its master: the page says so, and that it comes after the user logs off.
	vm-master -q add m2 --prepare none --image "$IMG/m.qcow2" --os linux --mem 64M --vcpus 1 --replaces m
	page carol
	grep -q 'A new version, m2, is ready for it: your desktop is updated after you log off.' "$W/page.html"
}

@test "what no host could ever hold: the page refuses the request in words, approval exits 4, a desktop that fits nowhere is not 'ready'; HEAD has GET's length" {
	web_start
	page carol
	tok=$(grep -o 'value="request"><input type="hidden" name="token" value="[^"]*"' "$W/page.html" | sed 's/.*value="//; s/"$//')
	post carol "action=request&token=$tok&master=m&mem=16T&disk=1P"
	assert_equal "$code" 400
	grep -q 'No host here can run a desktop with that much memory' "$W/b"
	assert_equal "$(sql "select count(*) from requests")" 0
	# One recorded anyway (before the hosts shrank, say): approval refuses it with exit 4 and the reason.
	sql "insert into requests (username, master, mem, vcpus, disk, created, changed)
		values ('carol', 'm', 17592186044416, 1, 1073741824, 0, 0)"
	run_vdi 4 vm-copy --requests --approve carol
	assert_output --regexp "carol: no host of pool 'vdi' can ever hold .* of memory: the largest can give "
	assert_equal "$(sql "select state from requests where username = 'carol'")" failed
	assert_equal "$(sql "select count(*) from uservms where username = 'carol'")" 0
	run_vdi 4 vm-copy --master m --mem 16T carol
	# A desktop that fits no host any more: the page says so, with no Connect button.
	sql "update uservms set mem = 17592186044416 where username = 'bob'"
	page bob
	grep -q 'larger than any computer here can run' "$W/page.html"
	! grep -q 'Your desktop is ready' "$W/page.html"
	! grep -q 'id="connect"' "$W/page.html"
	sql "update uservms set mem = 67108864 where username = 'bob'"
	# HEAD answers the length GET's body has, and no body.
	curl -sS -u alice:pw-alice -o "$W/get.html" "$WEB"
	curl -sS -u alice:pw-alice -I -o /dev/null -D "$W/head" "$WEB"
	grep -qix "content-length: $(stat -c %s "$W/get.html")"$'\r' "$W/head"
}

@test "remote-viewer opens the page's .vv: vm-watch records connect and disconnect; a reconnect keeps the session, a viewer gone past disconnect_timeout ends it; an expired ticket is refused" {
	printf 'ticket_ttl = 8s\ndisconnect_timeout = 4s\nconnect_timeout = 0\n' >"$VDI_CONFIG"
	web_start
	watch_start
	page alice
	post alice "action=connect&token=$TOKEN"
	cp "$W/b" "$W/alice.vv"
	cp "$W/b" "$W/leaked.vv" # remote-viewer deletes the file it opens: a copy that leaked
	viewer "$W/alice.vv"
	wait_sql "select case when connected_since is not null and disconnected_since is null then 1 else 0 end from sessions where id = 1" 1
	run_vdi vm-ls -o json alice
	assert_equal "$(jq -r '.[0].viewer' <<<"$output")" connected
	grep -q 'session 1 (alice on h[12]): viewer connected' "$W/watch.log"
	# Once the viewer is in, its ticket is spent: the same .vv again (leaked, replayed) is refused,
	# and the user's own viewer stays connected.
	for ((i = 0; i < 100; i++)); do
		grep -q 'session 1 (alice on h[12]): ticket spent' "$W/watch.log" && break
		sleep 0.1
	done
	grep -q 'session 1 (alice on h[12]): ticket spent' "$W/watch.log"
	DISPLAY=$XDISP remote-viewer --debug "$W/leaked.vv" </dev/null >"$W/replay.log" 2>&1 3>&- &
	echo $! >"$W/replay.pid"
	for ((i = 0; i < 100; i++)); do
		grep -q 'main channel: auth failure' "$W/replay.log" && break
		sleep 0.1
	done
	stop_pidfile "$W/replay.pid"
	grep -q 'main channel: auth failure' "$W/replay.log"
	kill -0 "$(cat "$W/viewer.pid")"
	assert_equal "$(sql "select case when connected_since is not null and disconnected_since is null then 1 else 0 end from sessions where id = 1")" 1
	run virsh -q -c "$(lab_uri "$(sql "select h.name from sessions s join hosts h on h.id = s.host_id where s.id = 1")")" \
		qemu-monitor-command "$(sql "select domain from sessions where id = 1")" '{"execute":"query-spice"}'
	assert_equal "$(jq '.return.channels | length > 0' <<<"$output")" true
	# The page says a new Connect takes the desktop over from the viewer that is in.
	page alice
	grep -q 'id="takeover"' "$W/page.html"
	# vm-start hands out a fresh ticket for a desktop that runs (its own was spent), and the viewer stays.
	run_vdi vm-start --show-password -o json alice
	[ "$(jq -r '.[0].password' <<<"$output")" = "$(sql "select display_password from sessions where id = 1")" ]
	[ "$(sql "select ticket_expires from sessions where id = 1")" -gt "$(date +%s)" ]
	kill -0 "$(cat "$W/viewer.pid")"
	# The viewer closes: disconnected.  It comes back within the timeout: the session stays.
	viewer_leaves 1
	page alice
	post alice "action=connect&token=$TOKEN"
	cp "$W/b" "$W/alice.vv"
	viewer "$W/alice.vv"
	wait_sql "select case when disconnected_since is null then 1 else 0 end from sessions where id = 1" 1
	VDI_TEST_CLOCK=5 run_vdi vm-reap
	assert_equal "$(sql "select state from sessions where id = 1")" running
	# Gone for good: past disconnect_timeout, vm-reap ends it "disconnected" and the host has its memory back.
	viewer_leaves 1
	VDI_TEST_CLOCK=5 run_vdi vm-reap
	assert_equal "$(sql "select state || ' ' || reason from sessions where id = 1")" "ended disconnected"
	assert_equal "$(sql "select sum(sessions) || ' ' || sum(mem_used) from hosts")" "0 0"
	# The page says so, and that unsaved work went with it.
	page alice
	grep -q 'Your last session ended <time datetime="[^"]*">[^<]* UTC</time> because no viewer was connected to it for too long. Anything not saved in it is gone' "$W/page.html" ||
		{ grep -A3 'id="state"' "$W/page.html" >&3; sql "select id, state, reason, kind from sessions" >&3; false; }
	# A .vv opened after its ticket expired is refused: the client never gets past authentication.
	page alice
	post alice "action=connect&token=$TOKEN"
	cp "$W/b" "$W/late.vv"
	sleep 9
	: >"$W/viewer.log"
	viewer "$W/late.vv"
	for ((i = 0; i < 100; i++)); do
		grep -q 'main channel: auth failure' "$W/viewer.log" && break
		sleep 0.1
	done
	grep -q 'main channel: auth failure' "$W/viewer.log"
	grep -q 'session 2 (alice on h[12]): client .* left without getting in' "$W/watch.log"
	# The same viewer program with a fresh ticket gets in: it was the ticket, not the viewer.
	stop_pidfile "$W/viewer.pid"
	page alice
	post alice "action=connect&token=$TOKEN"
	cp "$W/b" "$W/alice.vv"
	viewer "$W/alice.vv"
	wait_sql "select case when connected_since is not null then 1 else 0 end from sessions where id = 2" 1
}

@test "a real browser: headless chromium signs in, clicks Connect twice from one page and gets a .vv each time; desktop and phone sizes" {
	printf 'signout_url = /logout\n' >>"$VDI_CONFIG"
	web_start
	mkdir -p "$W/chromium" "$W/downloads" "$W/shots"
	BROWSER_SHOTS=$W/shots run timeout -k 5 90 python3 "$TOP/test/browser.py" "$W/chromium" "$W/downloads" "$WEB" alice pw-alice
	[ "$status" -eq 0 ] || { echo "$output" >&3; tail -n 20 "$W/chromium/chromium.log" >&3; false; }
	assert_output --partial 'Signed in as alice · Sign out'
	assert_output --partial 'Help'
	# Touch targets of 44 px or more, every field labelled, every control reachable by keyboard,
	# nothing wider than a phone's screen.
	assert_line --regexp '^measured 1280x900: targets=[0-9]+ min_height=(4[4-9]|[5-9][0-9]) unlabelled=0 unfocusable=0 overflow=false$'
	assert_line --regexp '^measured 390x844: targets=[0-9]+ min_height=(4[4-9]|[5-9][0-9]) unlabelled=0 unfocusable=0 overflow=false$'
	[ -s "$W/shots/page-1280x900.png" ] && [ -s "$W/shots/page-390x844.png" ]
	[ -z "${VDI_TEST_SHOTS:-}" ] || cp "$W/shots"/*.png "$VDI_TEST_SHOTS/"
	# Connect twice from the same page: two .vv files, one session.
	assert_equal "$(grep -c '^downloaded .*\.vv$' <<<"$output")" 2
	for f in "$W/downloads"/seen-*; do
		grep -qx '\[virt-viewer\]' "$f"
		grep -q '^title=alice (session 1 on h[12])' "$f"
	done
	assert_equal "$(sql "select count(*) || ' ' || min(state) from sessions")" "1 running"
	# No internal host name on the page.
	page alice
	! grep -q '\bh[12]\b' "$W/page.html"
	grep -q '<a id="signout" href="/logout">Sign out</a>' "$W/page.html"
}

@test "vm-watch: a destroyed domain ends its session within seconds, without vm-reap; a second vm-watch is refused" {
	watch_start
	run_vdi 5 vm-watch
	assert_output --partial 'another vm-watch watches'
	# The lock belongs to the VMDB itself: another name for it (a symlink, "..") meets the same lock.
	if ! on_pg; then
		ln -s "$VDI_DB" "$W/other-name.db"
		mkdir -p "$W/sub"
		VDI_DB=$W/other-name.db run_vdi 5 vm-watch
		assert_output --partial 'another vm-watch watches'
		VDI_DB=$W/sub/../other-name.db run_vdi 5 vm-watch
		assert_output --partial 'another vm-watch watches'
	fi
	# The refused ones marked nothing unwatched: every host is still watched.
	assert_equal "$(sql "select count(*) from hosts where watch_since is null")" 0
	run_vdi vm-start alice
	running_session_of alice
	virsh -q -c "$(lab_uri "$host")" destroy "$dom" >/dev/null
	wait_sql "select state || ' ' || reason from sessions where id = 1" "ended poweroff" 10
	grep -q "session 1 (alice on $host): it was destroyed; ended poweroff" "$W/watch.log"
	assert_equal "$(sql "select sum(sessions) from hosts")" 0
	# A started session nobody connects to ends never-connected (vm-reap, from what vm-watch saw).
	printf 'connect_timeout = 2s\n' >"$VDI_CONFIG"
	run_vdi vm-start bob
	VDI_TEST_CLOCK=4 run_vdi vm-reap
	assert_equal "$(sql "select reason from sessions where id = 2")" never-connected
	# A QEMU that dies on its own (SIGSEGV, as spice-server's crash on a viewer's drop does) ends
	# 'crashed', not 'poweroff': counted on its host, and the event says what libvirt said.
	run_vdi vm-start alice
	running_session_of alice
	kill -SEGV "$(cat "$LAB/$host/run/qemu/$dom.pid")"
	wait_sql "select state || ' ' || reason from sessions where id = 3" "ended crashed" 10
	grep -q "session 3 (alice on $host): QEMU failed; ended crashed" "$W/watch.log" ||
		grep -q "session 3 (alice on $host): it crashed; ended crashed" "$W/watch.log"
	assert_equal "$(sql "select crashes from hosts where name = '$host'")" 1
	run_vdi vm-hosts list -o json
	assert_equal "$(jq -r --arg h "$host" '.[] | select(.name == $h) | .crashes' <<<"$output")" 1
	sql "select detail from events where action = 'session-end' and detail like 'session=3 %'" | grep -q 'reason=crashed libvirt: '
	# SIGTERM: it stops, and says the hosts are no longer watched.
	stop_pidfile "$W/watch.pid"
	wait_sql "select count(*) from hosts where watch_since is not null" 0 5
}

@test "vm-watch: a desktop that QEMU pauses on its own ends crashed within seconds, quoting libvirt and the host's log; an admin's pause stays" {
	printf 'host_log_dir = %s/%%h/log/qemu\n' "$LAB" >>"$VDI_CONFIG"
	watch_start
	run_vdi vm-start alice
	running_session_of alice
	local uri
	uri=$(lab_uri "$host")
	# An admin's pause (virsh suspend) is the admin's business: the session runs on.
	virsh -q -c "$uri" suspend "$dom" >/dev/null
	sleep 2
	assert_equal "$(sql "select state from sessions where id = 1")" running
	virsh -q -c "$uri" resume "$dom" >/dev/null
	# QEMU stops the guest by itself (as on a KVM emulation failure): libvirt says "paused (unknown)".
	virsh -q -c "$uri" qemu-monitor-command --hmp "$dom" stop >/dev/null
	wait_sql "select state || ' ' || reason from sessions where id = 1" "ended crashed" 10
	grep -q "session 1 (alice on $host): stopped running: paused by QEMU, reason unknown to libvirt" "$W/watch.log"
	run sql "select detail from events where action = 'session-end' and detail like 'session=1 %'"
	assert_output --partial "reason=crashed stopped running: paused by QEMU"
	assert_output --partial "the host logged: QEMU: "
	assert_equal "$(sql "select sum(sessions) from hosts")" 0
	assert_equal "$(virsh -q -c "$uri" list --name | grep -c "$dom")" 0
}

@test "vm-watch: a host's libvirtd killed marks it down; restarted, it is watched again and its events are seen" {
	watch_start
	run_vdi vm-start alice
	running_session_of alice
	vdi-lab restart "$LAB" "$host" --kill 2>/dev/null
	wait_sql "select health || ' ' || (case when watch_since is null then 1 else 0 end) from hosts where name = '$host'" "up 0" 30
	grep -q "host $host: libvirtd closed the connection; marked down" "$W/watch.log"
	assert_equal "$(sql "select count(*) from events where object = '$host' and action = 'host-down'")" 1
	# The session survived libvirtd's restart, and the next event is seen.
	assert_equal "$(sql "select state from sessions where id = 1")" running
	virsh -q -c "$(lab_uri "$host")" destroy "$dom" >/dev/null
	wait_sql "select reason from sessions where id = 1" poweroff 10
}

@test "vm-watch --standby waits beside the watcher, takes over within seconds of its kill -9, and ends what stops" {
	watch_start
	vm-watch --standby --rescan 1s </dev/null >>"$W/watch2.log" 2>&1 3>&- &
	echo $! >"$W/watch2.pid"
	local i
	for ((i = 0; i < 50; i++)); do
		grep -q 'standby: another vm-watch watches' "$W/watch2.log" && break
		sleep 0.1
	done
	grep -q 'standby: another vm-watch watches' "$W/watch2.log"
	run_vdi vm-start alice
	kill -9 "$(cat "$W/watch.pid")"
	rm -f "$W/watch.pid"
	SECONDS=0
	for ((i = 0; i < 100; i++)); do
		grep -q 'taking over' "$W/watch2.log" && break
		sleep 0.1
	done
	grep -q 'taking over' "$W/watch2.log"
	[ "$SECONDS" -le 10 ]
	wait_sql "select count(*) from hosts where watch_since is null" 0 10
	running_session_of alice
	virsh -q -c "$(lab_uri "$host")" destroy "$dom" >/dev/null
	wait_sql "select reason from sessions where id = 1" poweroff 10
}

@test "vm-watch killed -9: nothing is lost; what it missed vm-reap converges, and a new vm-watch reconciles" {
	watch_start
	run_vdi vm-start alice bob
	kill -9 "$(cat "$W/watch.pid")"
	rm -f "$W/watch.pid"
	running_session_of alice
	virsh -q -c "$(lab_uri "$host")" destroy "$dom" >/dev/null
	# Its watch goes stale: vm-reap does not trust viewers it recorded, and ends what is gone.
	run_vdi vm-reap
	assert_equal "$(sql "select reason from sessions where id = 1")" poweroff
	assert_equal "$(sql "select state from sessions where id = 2")" running
	# A new watcher reconciles: bob's session is there, and watched again.
	running_session_of bob
	watch_start
	virsh -q -c "$(lab_uri "$host")" destroy "$dom" >/dev/null
	wait_sql "select reason from sessions where id = 2" poweroff 10
}
