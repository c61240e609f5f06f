/*
 * vm-connect - the users' web page, as a CGI program (RFC 3875): a user
 * sees their desktop, clicks Connect and gets a .vv file for
 * remote-viewer, or asks for a desktop.
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
#include <unistd.h>

#include "clock.h"
#include "cli.h"
#include "connect.h"
#include "form.h"
#include "master.h"
#include "mem.h"
#include "names.h"
#include "parse.h"
#include "request.h"
#include "token.h"

static const char usage[] =
	"usage: vm-connect [--db PATH]\n"
	"       vm-connect -h | --help | --version\n"
	"\n"
	"A CGI program: the web server runs it with REMOTE_USER set by its\n"
	"authentication.  GET shows the user's desktop; POST action=connect answers\n"
	"with a .vv file whose password works for ticket_ttl; POST action=request\n"
	"asks for a desktop, which an administrator makes with vm-copy(1).\n"
	"Exit: 0 an answer was sent (whatever its HTTP status), 1 none could be,\n"
	"2 usage.  See vm-connect(1).\n";

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

static const char *
since(int64_t t, char *buf, size_t len)
{
	time_t tt = (time_t)t;
	struct tm tm;

	if (t <= 0)
		return "";
	localtime_r(&tt, &tm);
	strftime(buf, len, " since %Y-%m-%d %H:%M", &tm);
	return buf;
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

/* The page: the user's desktop, Connect, and the request form; msg (if any) says what went wrong. */
/* The sentence that says where the user's desktop is. */
static void
state_line(struct answer *a, const struct vdi_connect_status *st)
{
	char tbuf[64];

	fputs("<p id=\"state\">", a->b);
	if (!st->desktop) {
		fputs("Your desktop cannot be read right now.", a->b);
	} else if (strcmp(st->desktop, "none") == 0) {
		fputs("You have no desktop yet. Ask for one below.", a->b);
	} else if (strcmp(st->desktop, "requested") == 0) {
		fputs("Your request for a ", a->b);
		esc(a->b, st->master);
		fputs(" desktop is waiting for your administrator.", a->b);
	} else if (strcmp(st->desktop, "creating") == 0 || strcmp(st->desktop, "preparing") == 0) {
		fputs("Your desktop is being prepared. Come back in a few minutes.", a->b);
	} else if (strcmp(st->desktop, "failed") == 0) {
		fputs("Your desktop could not be prepared. Your administrator can make it again.", a->b);
	} else if (st->never_fits) {
		fputs("Your desktop is larger than any host here can run. Your administrator can make it smaller.",
		      a->b);
	} else if (st->session && strcmp(st->session, "running") == 0) {
		fputs("Your desktop is running on ", a->b);
		esc(a->b, st->host);
		fputs(st->since ? (st->connected ? ", connected" : ", disconnected") : ", not connected yet", a->b);
		esc(a->b, since(st->since, tbuf, sizeof(tbuf)));
		fputs(".", a->b);
	} else if (st->session) {
		fputs("Your desktop is ", a->b);
		esc(a->b, st->session);
		fputs(".", a->b);
	} else {
		fputs("Your desktop is ready.", a->b);
	}
}

static void
page(struct answer *a, int status, const char *reason, const char *msg)
{
	struct vdi_connect_status st = { 0 };
	struct vdi_master *ms = NULL;
	struct vdi_err err = { 0 };
	unsigned char key[VDI_TOKEN_KEY];
	size_t nms = 0;
	char mem[32], disk[32];
	bool have_key;

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
	fputs("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
	      "<meta name=\"viewport\" content=\"width=device-width\">"
	      "<title>Your desktop</title><style>body{font-family:sans-serif;max-width:40em;margin:2em auto}"
	      ".msg{border:1px solid #c00;padding:.5em}</style></head><body>\n", a->b);
	fputs("<h1>Your desktop</h1>\n<p>Signed in as <b id=\"user\">", a->b);
	esc(a->b, user);
	fputs("</b>.</p>\n", a->b);
	if (msg) {
		fputs("<p class=\"msg\" id=\"message\" role=\"alert\">", a->b);
		esc(a->b, msg);
		fputs("</p>\n", a->b);
	}
	state_line(a, &st);
	fputs("</p>\n", a->b);
	if (st.desktop && strcmp(st.desktop, "ready") == 0 && !st.never_fits) {
		fputs("<form method=\"post\" id=\"connect\">\n", a->b);
		if (have_key)
			form_token(a, key, "connect");
		/* A viewer is in: a new ticket's first use takes the desktop over from it, so say so. */
		if (st.session && st.connected)
			fputs("<p id=\"takeover\">Your desktop is open in a viewer now. Connecting here closes it "
			      "there.</p>\n<button type=\"submit\">Connect here instead</button>\n</form>\n", a->b);
		else
			fputs("<button type=\"submit\">Connect</button>\n</form>\n", a->b);
		fprintf(a->b, "<p>Open the file you get with remote-viewer (virt-viewer) within %lld seconds; "
			"it works once.</p>\n", (long long)(c.cfg.ticket_ttl / 1000));
	}
	if (st.desktop && (strcmp(st.desktop, "none") == 0 || strcmp(st.desktop, "requested") == 0) && nms) {
		fputs("<h2>Ask for a desktop</h2>\n<form method=\"post\" id=\"request\">\n", a->b);
		if (have_key)
			form_token(a, key, "request");
		fputs("<p><label>System and applications <select name=\"master\">\n", a->b);
		for (size_t i = 0; i < nms; i++) {
			if (strcmp(ms[i].state, "active") != 0)
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
		fputs("</select></label></p>\n"
		      "<p><label>Memory <input name=\"mem\" size=\"6\" placeholder=\"as the system\"></label> "
		      "<label>Disk <input name=\"disk\" size=\"6\" placeholder=\"as the system\"></label> "
		      "(for example 2G)</p>\n<button type=\"submit\">Ask</button>\n</form>\n", a->b);
	}
	fputs("</body></html>\n", a->b);
	explicit_bzero(key, sizeof(key));
	vdi_connect_status_clear(&st);
	vdi_masters_free(ms, nms);
}

/* The page for a Connect that failed: from the error's reason, never its words. */
static void
connect_failed(struct answer *a, const struct vdi_err *err)
{
	switch (err->reason) {
	case VDI_R_NO_USER:
	case VDI_R_NOTFOUND:
		page(a, 404, "Not Found", "You have no desktop yet. Ask for one below.");
		break;
	case VDI_R_NOHOST:
		header(a, "Retry-After: 60");
		page(a, 503, "Service Unavailable",
		     "No host has room for your desktop right now. Try again in a minute.");
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
		page(a, 409, "Conflict", "Your desktop is larger than any host here can run. "
		     "Your administrator can make it smaller.");
		break;
	default:
		if (err->code == VDI_ETEMP || err->code == VDI_ECONFLICT) {
			header(a, "Retry-After: 30");
			page(a, 503, "Service Unavailable",
			     "Your desktop is busy or a host does not answer. Try again in a moment.");
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

static void
request_desktop(struct answer *a, const struct vdi_form *f)
{
	struct vdi_request r = { .user = (char *)user, .master = f->master };
	struct vdi_err err = { 0 };
	int64_t id;

	if (!f->master || vdi_name_check("master", f->master, &err) < 0 ||
	    (f->mem && *f->mem && vdi_mem_parse(f->mem, &r.mem, &err) < 0) ||
	    (f->disk && *f->disk && vdi_disk_parse(f->disk, &r.disk, &err) < 0)) {
		log_line("request refused: %s", f->master ? err.msg : "no master");
		page(a, 400, "Bad Request", f->master ? err.msg : "Choose a system.");
		return;
	}
	if (vdi_request_add(c.db, &r, &id, &err) < 0) {
		log_line("request refused: %s", err.msg);
		if (err.reason == VDI_R_NEVER_FITS)
			page(a, 400, "Bad Request", "No host here can run a desktop with that much memory. "
			     "Ask for less, or leave Memory empty for the system's own size.");
		else if (err.code == VDI_ENOTFOUND)
			page(a, 400, "Bad Request", "There is no such system to choose.");
		else if (err.code == VDI_ECONFLICT)
			page(a, 409, "Conflict", "You have a desktop already.");
		else
			page(a, 500, "Internal Server Error", "Your request could not be recorded. Try again.");
		return;
	}
	log_line("request %lld recorded (master %s)", (long long)id, f->master);
	/* Post/Redirect/Get: a reload does not send the form again. */
	a->status = 303;
	a->reason = "See Other";
	header(a, "Location: %s", getenv("SCRIPT_NAME") && *getenv("SCRIPT_NAME") ? getenv("SCRIPT_NAME") : "./");
	header(a, "Content-Type: text/plain; charset=utf-8");
	fputs("Your request was recorded.\n", a->b);
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
	if (strcmp(f.action, "connect") != 0 && strcmp(f.action, "request") != 0) {
		log_line("refused: unknown action");
		page(a, 400, "Bad Request", "The form asks for something this page does not do.");
		return;
	}
	/* The token: this user's, this form's, not expired, never sent before. */
	if (!f.token || vdi_token_key(c.db, key, &err) < 0 ||
	    vdi_token_check(key, user, f.action, f.token, vdi_clock_now(), &err) < 0 ||
	    vdi_token_spend(c.db, f.token, vdi_clock_now(), &err) < 0) {
		explicit_bzero(key, sizeof(key));
		log_line("refused %s: %s", f.action, f.token ? err.msg : "no form token");
		page(a, 403, "Forbidden", f.token && err.reason == VDI_R_TOKEN_EXPIRED ?
		     "The page was open too long. Here it is again: try once more." :
		     "The form was not sent from your own page, or was sent twice. Try again from this page.");
		return;
	}
	explicit_bzero(key, sizeof(key));
	if (strcmp(f.action, "connect") == 0)
		connect_user(a);
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
