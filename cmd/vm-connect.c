/*
 * vm-connect - the users' web page, as a CGI program (RFC 3875): a user
 * sees their desktop, clicks Connect and gets a .vv file for
 * remote-viewer, or Open in browser and gets it in the tab (vm-console),
 * or asks for a desktop.
 *
 * The web server does TLS and authentication; vm-connect trusts only
 * REMOTE_USER, and a user sees and starts only their own desktop.  Forms
 * carry a one-time token tied to the user and the form (lib/db/token.c).  A
 * thin main: vdi_connect_status(), vdi_connect() (lib/flow/connect.c) and
 * vdi_request_add() (lib/db/request.c) do the work; this file speaks HTTP
 * and HTML.  Each refusal is one line in the web server's error log.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/random.h>
#include <unistd.h>

#include "clock.h"
#include "cli.h"
#include "connect.h"
#include "form.h"
#include "group.h"
#include "master.h"
#include "home.h"
#include "mem.h"
#include "names.h"
#include "parse.h"
#include "request.h"
#include "strv.h"
#include "token.h"

static const char usage[] =
	"usage: vm-connect [--db PATH]\n"
	"       vm-connect -h | --help | --version\n"
	"\n"
	"A CGI program: the web server runs it with REMOTE_USER set by its\n"
	"authentication.  GET shows the user's desktop; POST action=connect answers\n"
	"with a .vv file whose password works for ticket_ttl; POST action=console\n"
	"answers with the desktop in the page (noVNC through vm-console(1)); POST\n"
	"action=request asks for a desktop, which an administrator makes with\n"
	"vm-copy(1).\n"
	"Exit: 0 an answer was sent (whatever its HTTP status), 1 none could be,\n"
	"2 usage.  See vm-connect(1).\n";

static const struct vdi_cli_help help[] = {
	{ NULL, NULL },
};

static const struct option opts[] = {
	VDI_CLI_OPTS,
	{ NULL, 0, NULL, 0 },
};

#define BODY_MAX 4096
#define FORM_TTL 3600     /* seconds a page's forms can be sent */

/* One answer, built in memory and written at the end. */
struct answer {
	int status;
	const char *reason;
	char *headers, *body;
	size_t hlen, blen;
	FILE *h, *b;
};

static struct vdi_cli c;
static const char *user;

static void
answer_init(struct answer *a)
{
	memset(a, 0, sizeof(*a));
	a->h = open_memstream(&a->headers, &a->hlen);
	a->b = open_memstream(&a->body, &a->blen);
	if (!a->h || !a->b)
		vdi_oom();
}

static void __attribute__((format(printf, 2, 3)))
header(struct answer *a, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vfprintf(a->h, fmt, ap);
	va_end(ap);
	fputs("\r\n", a->h);
}

/* Text into HTML, escaped. */
static void
esc(FILE *f, const char *s)
{
	for (; s && *s; s++) {
		switch (*s) {
		case '&': fputs("&amp;", f); break;
		case '<': fputs("&lt;", f); break;
		case '>': fputs("&gt;", f); break;
		case '"': fputs("&quot;", f); break;
		case '\'': fputs("&#39;", f); break;
		default: fputc(*s, f);
		}
	}
}

static int
send_answer(struct answer *a, bool head)
{
	fclose(a->h);
	fclose(a->b);
	/* HEAD: the length GET's body would have (RFC 9110, 9.3.2 and 8.6), and no body. */
	printf("Status: %d %s\r\n%sContent-Length: %zu\r\n\r\n", a->status, a->reason, a->headers, a->blen);
	if (!head)
		fwrite(a->body, 1, a->blen, stdout);
	free(a->headers);
	if (a->body)
		explicit_bzero(a->body, a->blen); /* a .vv holds a password */
	free(a->body);
	return fflush(stdout) == 0 ? 0 : 1;
}

/* The web server's error log: one line per refusal or failure. */
static void __attribute__((format(printf, 1, 2)))
log_line(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "vm-connect: %s: ", user ? user : "-");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

/* A time for people: in UTC, said so (the page has no script to learn the reader's zone). */
static void
when(FILE *f, int64_t t)
{
	time_t tt = (time_t)t;
	struct tm tm;
	char iso[32], shown[32];

	gmtime_r(&tt, &tm);
	strftime(iso, sizeof(iso), "%Y-%m-%dT%H:%M:%SZ", &tm);
	strftime(shown, sizeof(shown), "%Y-%m-%d %H:%M UTC", &tm);
	fprintf(f, "<time datetime=\"%s\">%s</time>", iso, shown);
}

static void
form_token(struct answer *a, const unsigned char *key, const char *action)
{
	char tok[VDI_TOKEN_MAX];
	struct vdi_err err = { 0 };

	if (vdi_token_make(key, user, action, vdi_clock_now() + FORM_TTL, tok, &err) < 0)
		tok[0] = '\0';
	fprintf(a->b, "<input type=\"hidden\" name=\"action\" value=\"%s\">"
		"<input type=\"hidden\" name=\"token\" value=\"%s\">\n", action, tok);
}

/* Set by a Connect that failed for now (no room, busy): the page says the desktop is not started. */
static bool start_failed;

/* How a session ended, in words for its user. */
static const char *
ended_why(const char *reason)
{
	static const struct { const char *reason, *words; } w[] = {
		{ "poweroff", "you shut it down" },
		{ "logoff", "you ended it" },
		{ "admin", "an administrator ended it" },
		{ "expired", "it reached its time limit" },
		{ "disconnected", "no viewer was connected to it for too long" },
		{ "never-connected", "no viewer connected to it after it started" },
		{ "host-lost", "the computer it ran on stopped" },
		{ "crashed", "it stopped unexpectedly" },
		{ "failed", "it could not be started" },
		{ "orphan", "it was cleaned up" },
	};

	for (size_t i = 0; reason && i < sizeof(w) / sizeof(w[0]); i++)
		if (strcmp(reason, w[i].reason) == 0)
			return w[i].words;
	return "it ended";
}

/* The sentence that says where the user's desktop is; *refresh: seconds until the page should look again (0: no). */
static void
state_line(struct answer *a, const struct vdi_connect_status *st, int *refresh)
{
	fputs("<p id=\"state\" class=\"state\">", a->b);
	*refresh = 0;
	if (!st->desktop) {
		fputs("Your desktop cannot be read right now. Try again in a minute.", a->b);
		*refresh = 60;
	} else if (strcmp(st->desktop, "none") == 0) {
		fputs("You have no desktop yet. Ask for one below.", a->b);
	} else if (strcmp(st->desktop, "requested") == 0) {
		fputs("You asked for a ", a->b);
		esc(a->b, st->master);
		fputs(" desktop on ", a->b);
		when(a->b, st->requested);
		fputs(". It is waiting for your administrator; this page will show it when it is made.", a->b);
		*refresh = 60;
	} else if (st->updating) {
		fputs("Your desktop is being updated to a new version of its system. This takes a few minutes; "
		      "the files on your home disk stay. This page looks again by itself.", a->b);
		*refresh = 15;
	} else if (strcmp(st->desktop, "creating") == 0 || strcmp(st->desktop, "preparing") == 0) {
		fputs("Your desktop is being prepared. This takes a few minutes; this page looks again by itself.",
		      a->b);
		*refresh = 15;
	} else if (strcmp(st->desktop, "failed") == 0) {
		fputs("Your desktop could not be prepared. Your administrator can make it again.", a->b);
	} else if (st->never_fits) {
		fputs("Your desktop is larger than any computer here can run. Your administrator can make it smaller.",
		      a->b);
	} else if (st->session && strcmp(st->session, "running") == 0) {
		fputs("Your desktop is running", a->b);
		if (st->since) {
			fputs(st->connected ? ", open in a viewer since " : ", with no viewer open since ", a->b);
			when(a->b, st->since);
		} else {
			fputs(", not opened in a viewer yet", a->b);
		}
		fputs(".", a->b);
	} else if (st->session) {
		fputs(strcmp(st->session, "stopping") == 0 ? "Your desktop is being shut down." :
		      strcmp(st->session, "migrating") == 0 ? "Your desktop is moving to another computer; it "
							 "stays open." : "Your desktop is starting.", a->b);
		*refresh = 5;
	} else if (start_failed) {
		fputs("Your desktop is not started.", a->b);
	} else {
		fputs("Your desktop is ready to start.", a->b);
	}
	fputs("</p>\n", a->b);
	/* Which system (master) the desktop runs, whether a newer one waits, and the home disk. */
	if (st->desktop && strcmp(st->desktop, "ready") == 0) {
		char size[32];
		fputs("<p id=\"version\">Your desktop runs the system ", a->b);
		esc(a->b, st->master);
		if (st->home) {
			vdi_size_format((uint64_t)st->home, size, sizeof(size));
			fprintf(a->b, ", with a home disk of %s: what you keep there stays from one session to the next", size);
		}
		fputs(".", a->b);
		if (st->update_to) {
			fputs(" A new version, ", a->b);
			esc(a->b, st->update_to);
			fputs(", is ready for it: your desktop is updated after you log off.", a->b);
		}
		fputs("</p>\n", a->b);
	}
	/* The session before this one ended: say so, and that its unsaved work is gone. */
	if (st->desktop && strcmp(st->desktop, "ready") == 0 && !st->session && st->last_reason &&
	    strcmp(st->last_reason, "logoff") != 0) {
		fputs("<p id=\"last\">Your last session ended ", a->b);
		when(a->b, st->last_ended);
		fprintf(a->b, " because %s. Anything not saved in it is gone: each session starts fresh.</p>\n",
			ended_why(st->last_reason));
	}
}

/* Where to get a viewer, for the system the browser says it runs on. */
static void
viewer_help(struct answer *a)
{
	const char *ua = getenv("HTTP_USER_AGENT");

	fputs("<details id=\"help\"><summary>Help</summary>\n<p>Connect gives you a small file. Open it with "
	      "<b>remote-viewer</b> (part of virt-viewer); it works once, within the time shown.</p>\n<p>", a->b);
	if (ua && strstr(ua, "Android"))
		fputs("On Android, open it with a SPICE app such as aSPICE.", a->b);
	else if (ua && (strstr(ua, "iPhone") || strstr(ua, "iPad")))
		fputs("On an iPhone or iPad, open it with a SPICE app such as aSPICE Pro.", a->b);
	else if (ua && strstr(ua, "Windows"))
		fputs("On Windows, install virt-viewer from <a href=\"https://virt-manager.org/download\">"
		      "virt-manager.org</a> (the .msi for your Windows).", a->b);
	else if (ua && strstr(ua, "Mac OS"))
		fputs("On a Mac, install virt-viewer with Homebrew (<code>brew install virt-viewer</code>).", a->b);
	else
		fputs("On Linux, install your distribution's virt-viewer package (for example "
		      "<code>apt install virt-viewer</code>).", a->b);
	fputs("</p>\n<p>Your desktop keeps running when you close the viewer, for a while; open it again with "
	      "Connect. <b>Log off</b> ends it: the next Connect starts a fresh one.</p>\n</details>\n", a->b);
}

static const char style[] =
	"<style>"
	"*{box-sizing:border-box}"
	"body{font:1rem/1.5 system-ui,sans-serif;color:#1a1a1a;background:#f5f6f8;margin:0;padding:1rem}"
	"main{max-width:38rem;margin:0 auto;background:#fff;border:1px solid #d8dbe0;border-radius:8px;"
	"padding:1rem 1.25rem}"
	"header{display:flex;flex-wrap:wrap;justify-content:space-between;align-items:center;gap:.5rem}"
	"h1{font-size:1.5rem;margin:.25rem 0}h2{font-size:1.2rem;margin:1.5rem 0 .5rem}"
	".state{font-size:1.1rem}"
	".msg{border-left:4px solid #b00020;background:#fdecee;padding:.5rem .75rem}"
	"button,.button{display:inline-block;min-height:44px;min-width:44px;padding:.6rem 1.2rem;margin:.25rem .5rem "
	".25rem 0;font:inherit;border-radius:6px;border:1px solid #1d4ed8;background:#1d4ed8;color:#fff;"
	"cursor:pointer;text-decoration:none}"
	"button.quiet{background:#fff;color:#1d4ed8}"
	"button:focus-visible,a:focus-visible,select:focus-visible,input:focus-visible,summary:focus-visible"
	"{outline:3px solid #f59e0b;outline-offset:2px}"
	"a{color:#1d4ed8}"
	"label{display:block;margin:.5rem 0}"
	"select,input{display:block;width:100%;min-height:44px;font:inherit;padding:.4rem;margin-top:.25rem;"
	"border:1px solid #8a8f98;border-radius:6px}"
	"summary{min-height:44px;padding:.6rem 0;cursor:pointer}"
	".note{color:#4a4f57;font-size:.95rem}"
	"</style>";

static void
page(struct answer *a, int status, const char *reason, const char *msg)
{
	struct vdi_connect_status st = { 0 };
	struct vdi_master *ms = NULL;
	struct vdi_err err = { 0 };
	unsigned char key[VDI_TOKEN_KEY];
	size_t nms = 0, nmine = 0;
	char mem[32], disk[32], **mine = NULL;
	bool have_key, limited = false;
	int refresh = 0;
	FILE *body;
	char *rest = NULL;
	size_t nrest = 0;

	a->status = status;
	a->reason = reason;
	header(a, "Content-Type: text/html; charset=utf-8");
	header(a, "Cache-Control: no-store");
	header(a, "Content-Security-Policy: default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
		  "frame-ancestors 'none'");
	header(a, "X-Content-Type-Options: nosniff");
	header(a, "Referrer-Policy: no-referrer");
	have_key = vdi_token_key(c.db, key, &err) == 0;
	if (vdi_connect_status(c.db, user, &st, &err) < 0 || vdi_master_list(c.db, &ms, &nms, &err) < 0)
		log_line("%s", err.msg);
	/* Only the masters a group of the user's has, while entitlements are in force. */
	if (vdi_group_masters(c.db, user, &limited, &mine, &nmine, &err) < 0) {
		log_line("%s", err.msg);
		limited = true; /* offer nothing rather than too much */
	}
	/* The state decides whether the page refreshes itself, which goes in the head: write the rest first. */
	if (!(body = open_memstream(&rest, &nrest)))
		vdi_oom();
	{
		FILE *saved = a->b;
		a->b = body;
		if (msg) {
			fputs("<p class=\"msg\" id=\"message\" role=\"alert\">", a->b);
			esc(a->b, msg);
			fputs("</p>\n", a->b);
		}
		state_line(a, &st, &refresh);
		if (st.desktop && strcmp(st.desktop, "ready") == 0 && !st.never_fits &&
		    (!st.session || strcmp(st.session, "running") == 0)) {
			fputs("<form method=\"post\" id=\"connect\">\n", a->b);
			if (have_key)
				form_token(a, key, "connect");
			/* A viewer is in: a new ticket's first use takes the desktop over from it, so say so. */
			if (st.session && st.connected)
				fputs("<p id=\"takeover\">Your desktop is open in a viewer now. Connecting here closes "
				      "it there.</p>\n<button type=\"submit\">Connect here instead</button>\n", a->b);
			else
				fprintf(a->b, "<button type=\"submit\">%s</button>\n", start_failed ? "Try again" :
					"Download for the viewer");
			fprintf(a->b, "<p class=\"note\">Open the file you get with remote-viewer within %lld seconds; "
				"it works once. You can press the button again at any time.</p>\n</form>\n",
				(long long)(c.cfg.ticket_ttl / 1000));
			/* The desktop in this browser tab (vm-console), when desktops get a console display. */
			if (c.cfg.console && (!st.session || st.console)) {
				fputs("<form method=\"post\" id=\"browser\">\n", a->b);
				if (have_key)
					form_token(a, key, "console");
				fputs("<button type=\"submit\">Open in browser</button>\n<p class=\"note\">Your desktop in "
				      "this browser tab: nothing to install.</p>\n</form>\n", a->b);
			}
		}
		if (st.session && (strcmp(st.session, "running") == 0 || strcmp(st.session, "assigned") == 0)) {
			fputs("<form method=\"post\" id=\"end\">\n", a->b);
			if (have_key)
				form_token(a, key, "end");
			fputs("<button type=\"submit\" class=\"quiet\">Log off</button>\n<span class=\"note\">Ends your "
			      "desktop now; anything not saved is lost. Connect then starts a fresh one.</span>\n"
			      "</form>\n", a->b);
		}
		if (st.desktop && strcmp(st.desktop, "none") == 0 && limited && nmine == 0) {
			fputs("<p id=\"no-masters\">There is no system you may ask for. Your administrator can give "
			      "one to a group of yours.</p>\n", a->b);
		} else if (st.desktop && strcmp(st.desktop, "none") == 0 && nms) {
			fputs("<h2>Ask for a desktop</h2>\n<form method=\"post\" id=\"request\">\n", a->b);
			if (have_key)
				form_token(a, key, "request");
			fputs("<label>System and applications <select name=\"master\">\n", a->b);
			for (size_t i = 0; i < nms; i++) {
				if (strcmp(ms[i].state, "active") != 0 || (limited && !vdi_strv_has(mine, nmine, ms[i].name)))
					continue;
				fputs("<option value=\"", a->b);
				esc(a->b, ms[i].name);
				fputs("\">", a->b);
				esc(a->b, ms[i].name);
				fputs(" (", a->b);
				esc(a->b, ms[i].os ? ms[i].os : "any OS");
				for (size_t k = 0; k < ms[i].napps; k++) {
					fputs(k ? ", " : ": ", a->b);
					esc(a->b, ms[i].apps[k]);
				}
				vdi_size_format(ms[i].mem, mem, sizeof(mem));
				vdi_size_format(ms[i].disk, disk, sizeof(disk));
				fprintf(a->b, "; %s memory, %s disk)</option>\n", mem, disk);
			}
			fputs("</select></label>\n"
			      "<label>Memory (for example 4G; empty: as the system) <input name=\"mem\" "
			      "inputmode=\"text\" autocomplete=\"off\"></label>\n"
			      "<label>Disk (for example 20G; empty: as the system) <input name=\"disk\" "
			      "autocomplete=\"off\"></label>\n", a->b);
			if (c.cfg.request_home_max > 0) {
				char most[32];
				vdi_size_format((uint64_t)c.cfg.request_home_max, most, sizeof(most));
				fprintf(a->b, "<label>Home disk for your files, kept between sessions (for example 5G, "
					"at most %s; empty: as the system) <input name=\"home\" autocomplete=\"off\">"
					"</label>\n", most);
			}
			fputs("<button type=\"submit\">Ask</button>\n</form>\n", a->b);
		}
		viewer_help(a);
		a->b = saved;
		fclose(body);
	}
	fputs("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
	      "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">", a->b);
	if (refresh)
		fprintf(a->b, "<meta http-equiv=\"refresh\" content=\"%d\">", refresh);
	fprintf(a->b, "<title>Your desktop</title>%s</head><body><main>\n<header><h1>Your desktop</h1>"
		"<p>Signed in as <b id=\"user\">", style);
	esc(a->b, user);
	fputs("</b>", a->b);
	if (*c.cfg.signout_url) {
		fputs(" · <a id=\"signout\" href=\"", a->b);
		esc(a->b, c.cfg.signout_url);
		fputs("\">Sign out</a>", a->b);
	}
	fputs("</p></header>\n", a->b);
	fwrite(rest, 1, nrest, a->b);
	fputs("</main></body></html>\n", a->b);
	free(rest);
	explicit_bzero(key, sizeof(key));
	vdi_connect_status_clear(&st);
	vdi_masters_free(ms, nms);
	vdi_strv_free(mine, nmine);
}

/* The page for a Connect that failed: from the error's reason, never its words. */
static void
connect_failed(struct answer *a, const struct vdi_err *err)
{
	start_failed = true;
	switch (err->reason) {
	case VDI_R_NO_USER:
	case VDI_R_NOTFOUND:
		page(a, 404, "Not Found", "You have no desktop yet. Ask for one below.");
		break;
	case VDI_R_NOHOST:
		header(a, "Retry-After: 60");
		page(a, 503, "Service Unavailable",
		     "There is no room for your desktop right now. Try again in a minute.");
		break;
	case VDI_R_PREPARING:
		header(a, "Retry-After: 30");
		page(a, 503, "Service Unavailable", "Your desktop is being prepared. Try again in a few minutes.");
		break;
	case VDI_R_PREPARE_FAILED:
		page(a, 500, "Internal Server Error",
		     "Your desktop could not be prepared. Your administrator can make it again.");
		break;
	case VDI_R_NEVER_FITS:
		page(a, 409, "Conflict", "Your desktop is larger than any computer here can run. "
		     "Your administrator can make it smaller.");
		break;
	case VDI_R_GROUP_FULL:
		header(a, "Retry-After: 60");
		page(a, 503, "Service Unavailable", "Your group has all the desktops it may have running at once. "
		     "Try again when one of them ends.");
		break;
	case VDI_R_NOT_ENTITLED:
		page(a, 403, "Forbidden", "You may not use this desktop's system: none of your groups has it. "
		     "Your administrator can give it to one of them.");
		break;
	default:
		if (err->code == VDI_ETEMP || err->code == VDI_ECONFLICT) {
			header(a, "Retry-After: 30");
			page(a, 503, "Service Unavailable",
			     "Your desktop could not be started just now. Try again in a moment.");
		} else {
			page(a, 500, "Internal Server Error",
			     "Your desktop could not be started. Your administrator was told.");
		}
	}
}

static void
connect_user(struct answer *a)
{
	struct vdi_start_opts so = { 0 };
	struct vdi_session s;
	struct vdi_err err = { 0 };
	char *vv;

	vdi_start_opts_config(&so, &c.cfg);
	so.assign.rng = &c.rng;
	so.conns = vdi_conns_new(c.cfg.poll_timeout);
	if (vdi_connect(c.db, user, &so, c.cfg.ticket_ttl / 1000, &s, &err) < 0) {
		log_line("connect: %s (%s)", err.msg, vdi_reason_name(err.reason));
		connect_failed(a, &err);
		goto out;
	}
	log_line("connect: session %lld on %s, ticket for %lld s", (long long)s.id, s.host,
		 (long long)(c.cfg.ticket_ttl / 1000));
	vv = vdi_start_vv(&s);
	a->status = 200;
	a->reason = "OK";
	header(a, "Content-Type: application/x-virt-viewer");
	header(a, "Content-Disposition: attachment; filename=\"desktop.vv\"");
	header(a, "Cache-Control: no-store");
	header(a, "X-Content-Type-Options: nosniff");
	fputs(vv, a->b);
	explicit_bzero(vv, strlen(vv));
	free(vv);
	vdi_session_clear(&s);
out:
	vdi_conns_free(so.conns);
}

/*
 * The console page: noVNC (served by the web server at novnc_url) in this
 * tab, connecting back to this site's console_path with the one-time
 * ticket.  The ticket is in the page only (a POST's answer, not stored):
 * not in a URL, a history entry or a Referer.
 */
static void
console_page(struct answer *a, const struct vdi_session *s, const char *ticket)
{
	unsigned char r[16];
	char nonce[33];

	/* The nonce lets the page's own script run and no other: a guessable one would not do. */
	if (getrandom(r, sizeof(r), 0) != (ssize_t)sizeof(r)) {
		log_line("console: no random bytes for the page's nonce");
		page(a, 503, "Service Unavailable", "The desktop service is not available right now. Try again in a "
		     "moment.");
		return;
	}
	for (size_t i = 0; i < sizeof(r); i++)
		snprintf(nonce + 2 * i, 3, "%02x", r[i]);
	a->status = 200;
	a->reason = "OK";
	header(a, "Content-Type: text/html; charset=utf-8");
	header(a, "Cache-Control: no-store");
	header(a, "Content-Security-Policy: default-src 'none'; script-src 'self' 'nonce-%s'; connect-src 'self'; "
		  "img-src 'self' data: blob:; style-src 'self' 'unsafe-inline'; form-action 'self'; "
		  "frame-ancestors 'none'", nonce);
	header(a, "X-Content-Type-Options: nosniff");
	header(a, "Referrer-Policy: no-referrer");
	fputs("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
	      "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
	      "<title>Your desktop (browser console)</title><style>"
	      "*{box-sizing:border-box}html,body{height:100%;margin:0}"
	      "body{display:flex;flex-direction:column;font:1rem/1.5 system-ui,sans-serif;background:#111;color:#f5f6f8}"
	      "#bar{display:flex;flex-wrap:wrap;align-items:center;gap:.5rem;padding:.25rem .5rem;background:#1f2937}"
	      "#status{flex:1 1 12rem}"
	      "button,a.button{min-height:44px;min-width:44px;padding:.5rem 1rem;font:inherit;border-radius:6px;"
	      "border:1px solid #93c5fd;background:#1d4ed8;color:#fff;cursor:pointer;text-decoration:none}"
	      "button:focus-visible,a:focus-visible,textarea:focus-visible,summary:focus-visible"
	      "{outline:3px solid #f59e0b;outline-offset:2px}"
	      "a{color:#bfdbfe}"
	      "#screen{flex:1;min-height:0;overflow:hidden;background:#000}"
	      "details{padding:.25rem .5rem;background:#1f2937}summary{min-height:44px;padding:.6rem 0;cursor:pointer}"
	      "textarea{display:block;width:100%;font:inherit;background:#fff;color:#111}"
	      "label{display:block}"
	      "#noscript{padding:1rem;background:#fdecee;color:#1a1a1a}"
	      "</style></head><body>\n"
	      "<div id=\"bar\" role=\"toolbar\" aria-label=\"Desktop\">"
	      "<span id=\"status\" role=\"status\" aria-live=\"polite\">Connecting to your desktop…</span>"
	      "<button id=\"cad\" type=\"button\">Send Ctrl+Alt+Del</button>"
	      "<button id=\"full\" type=\"button\">Full screen</button>"
	      "<a class=\"button\" id=\"back\" href=\"", a->b);
	esc(a->b, getenv("SCRIPT_NAME") ? getenv("SCRIPT_NAME") : "");
	fputs("\">Back</a></div>\n"
	      "<noscript><p id=\"noscript\">This console needs JavaScript, which is off in this browser. Turn it "
	      "on for this site, or go back and use <b>Download for the viewer</b> with remote-viewer.</p>"
	      "</noscript>\n"
	      "<details id=\"clip\"><summary>Clipboard</summary><label for=\"cliptext\">Text to paste into your "
	      "desktop, or the text your desktop copied</label><textarea id=\"cliptext\" rows=\"3\"></textarea>"
	      "<button id=\"clipsend\" type=\"button\">Send to the desktop</button></details>\n", a->b);
	fprintf(a->b, "<div id=\"screen\" role=\"application\" aria-label=\"Your desktop's screen\" "
		"data-session=\"%lld\" data-ticket=\"", (long long)s->id);
	esc(a->b, ticket);
	fputs("\" data-path=\"", a->b);
	esc(a->b, c.cfg.console_path);
	fputs("\"></div>\n", a->b);
	fprintf(a->b, "<script type=\"module\" nonce=\"%s\">\n", nonce);
	/* Script text, not HTML: written as it is (vdi.conf allows no quote, backslash or '<' in a URL). */
	fprintf(a->b, "import RFB from '%s/core/rfb.js';\n", c.cfg.novnc_url);
	fputs("const screen = document.getElementById('screen'), status = document.getElementById('status');\n"
	      "const d = screen.dataset;\n"
	      "const url = (location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + d.path +\n"
	      "  '?session=' + encodeURIComponent(d.session) + '&ticket=' + encodeURIComponent(d.ticket);\n"
	      "delete d.ticket;\n"
	      "const rfb = new RFB(screen, url);\n"
	      "rfb.scaleViewport = true;\n"
	      "rfb.focusOnClick = true;\n"
	      "window.vdiConsole = { state: 'connecting', rfb };\n"
	      "rfb.addEventListener('connect', () => {\n"
	      "  status.textContent = 'Connected. Click the screen to type; your keys go to the desktop.';\n"
	      "  window.vdiConsole.state = 'connected'; rfb.focus(); });\n"
	      "rfb.addEventListener('disconnect', e => {\n"
	      "  window.vdiConsole.state = 'disconnected';\n"
	      "  status.textContent = e.detail.clean ? 'Disconnected. Go back to open your desktop again.' :\n"
	      "    'The connection was refused or lost. Go back and press Open in browser again.'; });\n"
	      "rfb.addEventListener('clipboard', e => { document.getElementById('cliptext').value = e.detail.text; });\n"
	      "document.getElementById('clipsend').addEventListener('click', () =>\n"
	      "  rfb.clipboardPasteFrom(document.getElementById('cliptext').value));\n"
	      "document.getElementById('cad').addEventListener('click', () => { rfb.sendCtrlAltDel(); rfb.focus(); });\n"
	      "document.getElementById('full').addEventListener('click', () => {\n"
	      "  if (document.fullscreenElement) document.exitFullscreen(); else screen.requestFullscreen(); });\n"
	      "</script>\n</body></html>\n", a->b);
	explicit_bzero(r, sizeof(r));
}

static void
console_user(struct answer *a)
{
	struct vdi_start_opts so = { 0 };
	struct vdi_session s;
	struct vdi_err err = { 0 };
	char ticket[VDI_TOKEN_MAX];

	vdi_start_opts_config(&so, &c.cfg);
	so.assign.rng = &c.rng;
	so.conns = vdi_conns_new(c.cfg.poll_timeout);
	if (vdi_connect_console(c.db, user, &so, c.cfg.console_ticket_ttl / 1000, &s, ticket, &err) < 0) {
		log_line("console: %s (%s)", err.msg, vdi_reason_name(err.reason));
		connect_failed(a, &err);
		goto out;
	}
	log_line("console: session %lld on %s, console ticket for %lld s", (long long)s.id, s.host,
		 (long long)(c.cfg.console_ticket_ttl / 1000));
	console_page(a, &s, ticket);
	explicit_bzero(ticket, sizeof(ticket));
	vdi_session_clear(&s);
out:
	vdi_conns_free(so.conns);
}

/* Post/Redirect/Get: the page again, so a reload does not send the form again. */
static void
see_page(struct answer *a, const char *what)
{
	const char *self = getenv("SCRIPT_NAME");

	a->status = 303;
	a->reason = "See Other";
	header(a, "Location: %s", self && *self ? self : "./");
	header(a, "Content-Type: text/plain; charset=utf-8");
	fprintf(a->b, "%s\n", what);
}

static void
request_desktop(struct answer *a, const struct vdi_form *f)
{
	struct vdi_request r = { .user = (char *)user, .master = f->master };
	struct vdi_err err = { 0 };
	char words[160];
	int64_t id;

	const char *say = NULL;

	/* The words say what to type; the parser's own words go to the log only. */
	if (!f->master || vdi_name_check("master", f->master, &err) < 0)
		say = "Choose a system from the list.";
	else if (f->mem && *f->mem && vdi_mem_parse(f->mem, &r.mem, &err) < 0)
		say = "Memory: type a size such as 4G or 512M, or leave it empty for the system's own size.";
	else if (f->disk && *f->disk && vdi_disk_parse(f->disk, &r.disk, &err) < 0)
		say = "Disk: type a size such as 20G, or leave it empty for the system's own size.";
	else if (f->home && *f->home && (c.cfg.request_home_max <= 0 || vdi_home_parse(f->home, &r.home, &err) < 0 ||
					 r.home < VDI_HOME_MIN || r.home > c.cfg.request_home_max)) {
		char most[32];
		vdi_size_format((uint64_t)c.cfg.request_home_max, most, sizeof(most));
		if (!err.msg[0])
			vdi_err_set(&err, VDI_R_USAGE, "home '%.40s' out of range", f->home);
		say = c.cfg.request_home_max <= 0 ? "Home disk: this site gives none on request." : NULL;
		if (!say) {
			snprintf(words, sizeof(words), "Home disk: type a size from 16M to %s, such as 5G, or leave it "
				 "empty.", most);
			say = words;
		}
	}
	if (say) {
		log_line("request refused: %s", f->master ? err.msg : "no master");
		page(a, 400, "Bad Request", say);
		return;
	}
	if (vdi_request_add(c.db, &r, &id, &err) < 0) {
		log_line("request refused: %s", err.msg);
		if (err.reason == VDI_R_NEVER_FITS)
			page(a, 400, "Bad Request", "No host here can run a desktop with that much memory. "
			     "Ask for less, or leave Memory empty for the system's own size.");
		else if (err.code == VDI_ENOTFOUND)
			page(a, 400, "Bad Request", "There is no such system to choose.");
		else if (err.reason == VDI_R_NOT_ENTITLED)
			page(a, 403, "Forbidden", "You may not ask for that system: none of your groups has it.");
		else if (err.code == VDI_ECONFLICT)
			page(a, 409, "Conflict", "You have a desktop already.");
		else
			page(a, 500, "Internal Server Error", "Your request could not be recorded. Try again.");
		return;
	}
	log_line("request %lld recorded (master %s)", (long long)id, f->master);
	see_page(a, "Your request was recorded.");
}

/* Log off: end the user's desktop, then show the page again. */
static void
end_desktop(struct answer *a)
{
	struct vdi_conns *cs = vdi_conns_new(c.cfg.poll_timeout);
	struct vdi_err err = { 0 };

	if (vdi_connect_end(c.db, user, cs, &err) < 0) {
		log_line("log off: %s (%s)", err.msg, vdi_reason_name(err.reason));
		if (err.code == VDI_ENOTFOUND)
			see_page(a, "Your desktop was not running.");
		else
			page(a, 503, "Service Unavailable", "Your desktop could not be ended just now. "
			     "Try again in a moment.");
	} else {
		log_line("log off: the desktop ended");
		see_page(a, "Your desktop was ended.");
	}
	vdi_conns_free(cs);
}

static void
post(struct answer *a)
{
	const char *type = getenv("CONTENT_TYPE"), *len = getenv("CONTENT_LENGTH");
	struct vdi_form f = { 0 };
	struct vdi_err err = { 0 };
	unsigned char key[VDI_TOKEN_KEY];
	char body[BODY_MAX + 1];
	int64_t n;
	size_t got = 0;

	if (!type || strncmp(type, "application/x-www-form-urlencoded", 33) != 0 || (type[33] && type[33] != ';')) {
		log_line("refused: content type %s", type ? type : "none");
		page(a, 415, "Unsupported Media Type", "The form was sent in a way this page does not take.");
		return;
	}
	if (!len || vdi_int_parse(len, 0, INT64_MAX, &n, &err) < 0) {
		page(a, 411, "Length Required", "The form came without its length.");
		return;
	}
	if (n > BODY_MAX) {
		log_line("refused: a form of %lld bytes", (long long)n);
		page(a, 413, "Content Too Large", "The form is too large.");
		return;
	}
	while (got < (size_t)n) {
		ssize_t r = read(0, body + got, (size_t)n - got);
		if (r <= 0 && !(r < 0 && errno == EINTR))
			break;
		if (r > 0)
			got += (size_t)r;
	}
	body[got] = '\0';
	if (got != (size_t)n || memchr(body, '\0', got)) {
		log_line("refused: a short form");
		page(a, 400, "Bad Request", "The form arrived damaged.");
		return;
	}
	if (vdi_form_parse(body, &f, &err) < 0) {
		log_line("refused: %s", err.msg);
		page(a, 400, "Bad Request", err.msg);
		return;
	}
	if (strcmp(f.action, "connect") != 0 && strcmp(f.action, "request") != 0 && strcmp(f.action, "end") != 0 &&
	    strcmp(f.action, "console") != 0) {
		log_line("refused: unknown action");
		page(a, 400, "Bad Request", "The form asks for something this page does not do.");
		return;
	}
	/*
	 * The token: this user's, this form's, not expired.  A request or a
	 * log-off is spent on first use (sent twice, it would act twice);
	 * Connect is not, so the same page connects again and again: each
	 * answer is a new one-time display ticket for the same signed-in user,
	 * and the token still keeps other sites' forms out.
	 */
	if (!f.token || vdi_token_key(c.db, key, &err) < 0 ||
	    vdi_token_check(key, user, f.action, f.token, vdi_clock_now(), &err) < 0 ||
	    (strcmp(f.action, "connect") != 0 && strcmp(f.action, "console") != 0 &&
	     vdi_token_spend(c.db, f.token, vdi_clock_now(), &err) < 0)) {
		explicit_bzero(key, sizeof(key));
		log_line("refused %s: %s", f.action, f.token ? err.msg : "no form token");
		page(a, 403, "Forbidden", f.token && err.reason == VDI_R_TOKEN_EXPIRED ?
		     "This page was open too long and is out of date. Here it is fresh: press the button again "
		     "(or reload the page)." :
		     "That form was out of date: it came from an older copy of this page, or was sent twice. "
		     "Reload the page, then try again.");
		return;
	}
	explicit_bzero(key, sizeof(key));
	if (strcmp(f.action, "connect") == 0)
		connect_user(a);
	else if (strcmp(f.action, "console") == 0)
		console_user(a);
	else if (strcmp(f.action, "end") == 0)
		end_desktop(a);
	else
		request_desktop(a, &f);
}

int
main(int argc, char **argv)
{
	struct answer a;
	struct vdi_err err = { 0 };
	const char *method = getenv("REQUEST_METHOD");
	int o, code = 0;

	vdi_cli_init(&c, "vm-connect", usage);
	vdi_cli_set_help(&c, help, false);
	while ((o = getopt_long(argc, argv, VDI_CLI_SHORT, opts, NULL)) != -1)
		if (!vdi_cli_option(&c, o, optarg))
			vdi_cli_usage_error(&c, "unknown option");
	if (optind < argc)
		vdi_cli_usage_error(&c, "unexpected argument '%s'", argv[optind]);
	if (!getenv("GATEWAY_INTERFACE") || !method)
		vdi_cli_usage_error(&c, "not run by a web server (no GATEWAY_INTERFACE or REQUEST_METHOD)");
	answer_init(&a);
	user = getenv("REMOTE_USER");
	if (!user || vdi_name_check("user", user, &err) < 0) {
		/* Never a default user: the web server must have authenticated someone we can name. */
		fprintf(stderr, "vm-connect: refused: %s\n", user ? "REMOTE_USER is not a valid user name" :
			"no REMOTE_USER (is authentication on?)");
		user = NULL;
		a.status = 403;
		a.reason = "Forbidden";
		header(&a, "Content-Type: text/plain; charset=utf-8");
		fputs("Forbidden: sign in first.\n", a.b);
		return send_answer(&a, false);
	}
	if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0 && strcmp(method, "POST") != 0) {
		log_line("refused: method %s", method);
		a.status = 405;
		a.reason = "Method Not Allowed";
		header(&a, "Allow: GET, HEAD, POST");
		header(&a, "Content-Type: text/plain; charset=utf-8");
		fputs("This page takes GET and POST only.\n", a.b);
		return send_answer(&a, false);
	}
	if (vdi_cli_open(&c) != 0) {
		header(&a, "Retry-After: 30");
		a.status = 503;
		a.reason = "Service Unavailable";
		header(&a, "Content-Type: text/plain; charset=utf-8");
		fputs("The desktop service is not available right now. Try again in a moment.\n", a.b);
		return send_answer(&a, false);
	}
	/* Events name the user acting through the page. */
	{
		char who[160];
		snprintf(who, sizeof(who), "web:%s", user);
		vdi_db_set_who(c.db, who);
	}
	if (strcmp(method, "POST") == 0)
		post(&a);
	else
		page(&a, 200, "OK", NULL);
	code = send_answer(&a, strcmp(method, "HEAD") == 0);
	return vdi_cli_finish(&c, code);
}
