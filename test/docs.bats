#!/usr/bin/env bats
# Man pages are part of each feature: every program has one, it lints clean,
# it has the sections users look for, and its SYNOPSIS names every option
# that --help does (and the other way round).

load helpers

programs() {
	local p
	for p in "$TOP/$O"/bin/*; do basename "$p"; done
}

@test "every program has a man page that lints clean with the required sections" {
	local p page
	for p in $(programs) vdi-lab mkguest; do
		page=$TOP/man/$p.1
		[ -f "$page" ] || fail "no man page for $p"
		run mandoc -T lint -W warning "$page"
		assert_success
		assert_output ""
		for s in SYNOPSIS "EXIT STATUS" ENVIRONMENT FILES EXAMPLES; do
			grep -q "^\.Sh $s\$" "$page" || fail "$p.1 has no $s section"
		done
	done
	run mandoc -T lint -W warning "$TOP/man/vdi.conf.5"
	assert_output ""
}

@test "SYNOPSIS and --help's usage lines name the same options, and each has its own line under Options" {
	local p opts_help opts_man o
	for p in $(programs); do
		opts_help=$("$p" --help | sed '/^$/q' | grep -oE -- '--[a-z][a-z0-9-]+' | sort -u)
		for o in $opts_help; do
			"$p" --help | sed -n '/^Options:/,/^$/p' | grep -qE -- "^  (-[a-z], )?[^ ]*$o\b|, $o\b" ||
				fail "$p --help has no line for $o under Options"
		done
		opts_man=$(mandoc -T utf8 "$TOP/man/$p.1" | col -b |
			awk '/^SYNOPSIS/ { on = 1; next } /^[A-Z]/ { on = 0 } on' |
			grep -oE -- '--[a-z][a-z0-9-]+' | sort -u)
		[ "$opts_help" = "$opts_man" ] || fail "$p: --help and SYNOPSIS differ: $(diff <(echo "$opts_help") <(echo "$opts_man"))"
	done
}

@test "the lab's scripts answer --help with their usage, exit 0" {
	local p
	for p in vdi-lab mkguest; do
		run "$TOP/scripts/$p" --help
		assert_success
		assert_line --index 0 --regexp "^usage: $p "
	done
}

@test "every man page documents the exit codes all programs share" {
	local p
	for p in $(programs); do
		for code in 0 1 2 3 75; do
			grep -qE "^\.It $code\$" "$TOP/man/$p.1" || fail "$p.1 does not document exit status $code"
		done
	done
}

@test "the overview vdi-tools(7) lints clean, every page points at it, and nothing points outside the project" {
	run mandoc -T lint -W warning "$TOP/man/vdi-tools.7"
	assert_success
	assert_output ""
	local page
	for page in "$TOP"/man/*.[15]; do
		grep -q '^\.Xr vdi-tools 7' "$page" || fail "${page##*/} does not point at vdi-tools(7)"
	done
	run grep -rlE 'shared/DESIGN|\.\./shared' "$TOP/README" "$TOP/man" "$TOP/scripts" "$TOP/lib" "$TOP/cmd"
	assert_output ""
}

@test "make install puts each program's completion where bash-completion loads it, and the examples" {
	local dest=$BATS_TEST_TMPDIR/root p
	make -C "$TOP" --no-print-directory -s install DESTDIR="$dest" PREFIX=/usr >/dev/null
	for p in $(programs); do
		[ -e "$dest/usr/share/bash-completion/completions/$p" ] || fail "no completion for $p"
		run bash -c "source /usr/share/bash-completion/bash_completion
			BASH_COMPLETION_USER_DIR=/nonexistent
			source '$dest/usr/share/bash-completion/completions/$p'
			complete -p $p"
		assert_output "complete -F _vdi_complete $p"
	done
	# bash-completion's own loader finds it by the command's name.
	run bash -c "source /usr/share/bash-completion/bash_completion
		XDG_DATA_DIRS='$dest/usr/share' __load_completion vm-start && complete -p vm-start"
	assert_output "complete -F _vdi_complete vm-start"
	[ -f "$dest/usr/share/doc/vdi-tools/examples/vdi-tools.cron" ]
	[ -f "$dest/usr/share/doc/vdi-tools/examples/vm-reap.timer" ]
	[ -f "$dest/usr/share/man/man7/vdi-tools.7" ]
	# Installed with PREFIX=/usr, nothing says /usr/local.
	grep -q '^ExecStart=/usr/bin/vm-watch$' "$dest/usr/share/doc/vdi-tools/examples/vm-watch.service"
	grep -q '/usr/bin/vm-connect' "$dest/usr/share/man/man1/vm-connect.1"
	run grep -rl /usr/local "$dest"
	assert_output ""
	[ "$(stat -c %a "$dest/usr/share/man/man1/vm-ls.1")" = 644 ]
}
