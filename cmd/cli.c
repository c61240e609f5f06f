/* cli.c - common options, settings and messages of every program (see cli.h). */
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "parse.h"

#include "cli.h"
#include "strv.h"

void
vdi_cli_init(struct vdi_cli *c, const char *prog, const char *usage)
{
	memset(c, 0, sizeof(*c));
	c->prog = prog;
	c->usage = usage;
	c->fmt = VDI_FMT_AUTO;
	c->rng = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
	/*
	 * A libvirt connection the daemon closed must not kill the process
	 * (libvirt asks its users to ignore SIGPIPE, as virsh does); a closed
	 * stdout is then EPIPE, which vdi_cli_finish() treats as the reader
	 * having had enough.
	 */
	signal(SIGPIPE, SIG_IGN);
}

/*
 * One message line on stderr: "PROG: KIND: OBJECT: text", with every
 * control character escaped (\n, \t, \xHH), so a hostile name can neither
 * forge a second line nor send escape sequences to the terminal.
 */
static void
emit(struct vdi_cli *c, const char *kind, const char *object, const char *text)
{
	static const char hex[] = "0123456789abcdef";
	char buf[4096];
	size_t k = 0;
	const char *parts[3] = { object && *object ? object : NULL, object && *object ? ": " : NULL, text };

	for (int i = 0; i < 3; i++) {
		for (const unsigned char *p = (const unsigned char *)parts[i]; p && *p && k + 5 < sizeof(buf); p++) {
			if (*p == '\n' || *p == '\t' || *p == '\r') {
				buf[k++] = '\\';
				buf[k++] = *p == '\n' ? 'n' : *p == '\t' ? 't' : 'r';
			} else if (*p < 0x20 || *p == 0x7f) {
				buf[k++] = '\\';
				buf[k++] = 'x';
				buf[k++] = hex[*p >> 4];
				buf[k++] = hex[*p & 15];
			} else {
				buf[k++] = (char)*p;
			}
		}
	}
	buf[k] = '\0';
	fprintf(stderr, "%s: %s%s%s\n", c->prog, kind ? kind : "", kind ? ": " : "", buf);
}

static void
vemit(struct vdi_cli *c, const char *kind, const char *fmt, va_list ap)
{
	char text[2048];

	vsnprintf(text, sizeof(text), fmt, ap);
	emit(c, kind, NULL, text);
}

void
vdi_cli_usage_error(struct vdi_cli *c, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vemit(c, "error", fmt, ap);
	va_end(ap);
	fprintf(stderr, "Try '%s --help'.\n", c->prog);
	exit(VDI_EUSAGE);
}

void
vdi_cli_set_help(struct vdi_cli *c, const struct vdi_cli_help *help, bool dry_run)
{
	c->help = help;
	c->help_dry_run = dry_run;
}

static void
help_line(const char *form, const char *what)
{
	if (strlen(form) > 24)
		printf("  %s\n  %26s%s\n", form, "", what);
	else
		printf("  %-24s  %s\n", form, what);
}

/* --help: the usage lines (the man page's SYNOPSIS), one line per option, then the notes. */
static void
print_help(const struct vdi_cli *c)
{
	const char *notes = strstr(c->usage, "\n\n");

	fwrite(c->usage, 1, notes ? (size_t)(notes - c->usage) + 1 : strlen(c->usage), stdout);
	fputs("\nOptions:\n", stdout);
	for (const struct vdi_cli_help *h = c->help; h && h->form; h++)
		help_line(h->form, h->what);
	if (c->help_dry_run)
		help_line("-n, --dry-run", "say what would be done, change nothing");
	help_line("--db PATH|URI", "the VMDB: an SQLite file or a PostgreSQL URI");
	help_line("-o, --output FORMAT", "table, tsv or json (a terminal gets a table)");
	help_line("-q, --quiet", "errors only");
	help_line("-v, --verbose", "more messages");
	help_line("-h, --help", "this help");
	help_line("--version", "the version");
	if (notes)
		fputs(notes + 1, stdout);
}

int
vdi_cli_option(struct vdi_cli *c, int opt, const char *arg)
{
	switch (opt) {
	case 'h':
		print_help(c);
		exit(fflush(stdout) == 0 ? 0 : 1);
	case VDI_OPT_VERSION:
		printf("%s (vdi-tools) %s\n", c->prog, VDI_VERSION);
		exit(fflush(stdout) == 0 ? 0 : 1);
	case VDI_OPT_DB:
		if (!*arg)
			vdi_cli_usage_error(c, "--db: empty path");
		c->db_opt = arg;
		return 1;
	case 'o':
		if (vdi_fmt_parse(arg, &c->fmt) < 0)
			vdi_cli_usage_error(c, "-o: unknown format '%s' (table, tsv, json)", arg);
		return 1;
	case 'q':
		c->quiet = true;
		return 1;
	case 'v':
		c->verbose = true;
		return 1;
	case 'n':
		c->dry_run = true;
		return 1;
	case '?':
		/* getopt_long has printed what was wrong. */
		fprintf(stderr, "Try '%s --help'.\n", c->prog);
		exit(VDI_EUSAGE);
	case ':':
		fprintf(stderr, "Try '%s --help'.\n", c->prog);
		exit(VDI_EUSAGE);
	default:
		return 0;
	}
}

int
vdi_cli_settings(struct vdi_cli *c)
{
	struct vdi_err err = { 0 };

	if (c->settings_loaded)
		return 0; /* a command that looked at them before it opened the VMDB */
	if (vdi_config_load(&c->cfg, &err) < 0)
		return vdi_cli_fail(c, &err);
	c->settings_loaded = true;
	if (c->db_opt && vdi_config_set(&c->cfg, "db", c->db_opt, &err) < 0)
		return vdi_cli_fail(c, &err);
	return 0;
}

int
vdi_cli_open(struct vdi_cli *c)
{
	struct vdi_err err = { 0 };
	int rc;

	if ((rc = vdi_cli_settings(c)) != 0)
		return rc;
	if (vdi_db_open(&c->db, c->cfg.db, c->cfg.busy_timeout, c->prog, &err) < 0)
		return vdi_cli_fail(c, &err);
	/* -n: every change is made and checked, then rolled back (db.h). */
	vdi_db_set_dry_run(c->db, c->dry_run);
	c->out = vdi_out_new(c->fmt, stdout);
	/* A table on a terminal fits it, as ps's does; -o table into a pipe or a file keeps every column. */
	if (vdi_out_fmt(c->out) == VDI_FMT_TABLE && isatty(STDOUT_FILENO)) {
		struct winsize ws;
		const char *env = getenv("COLUMNS");
		int64_t n;
		if (env && vdi_int_parse(env, 20, 10000, &n, VDI_ERR_SCRATCH) == 0)
			vdi_out_table_width(c->out, (int)n);
		else
			vdi_out_table_width(c->out, ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0 ?
					    ws.ws_col : 80);
	}
	return 0;
}

int
vdi_cli_fail(struct vdi_cli *c, const struct vdi_err *err)
{
	vdi_cli_progress(c, NULL, -1, 0, false);
	emit(c, "error", err->object, err->msg[0] ? err->msg : "failed");
	return err->code ? err->code : VDI_EFAIL;
}

void
vdi_cli_warn_err(struct vdi_cli *c, const struct vdi_err *err)
{
	vdi_cli_progress(c, NULL, -1, 0, false);
	emit(c, "warning", err->object, err->msg[0] ? err->msg : "failed");
}

void
vdi_cli_warn(struct vdi_cli *c, const char *fmt, ...)
{
	va_list ap;

	vdi_cli_progress(c, NULL, -1, 0, false);
	va_start(ap, fmt);
	vemit(c, "warning", fmt, ap);
	va_end(ap);
}

void
vdi_cli_info(struct vdi_cli *c, const char *fmt, ...)
{
	va_list ap;

	if (c->quiet)
		return;
	vdi_cli_progress(c, NULL, -1, 0, false);
	va_start(ap, fmt);
	vemit(c, NULL, fmt, ap);
	va_end(ap);
}

static volatile sig_atomic_t stop_flag;

static void
on_stop(int sig)
{
	(void)sig;
	stop_flag = 1;
}

const volatile sig_atomic_t *
vdi_cli_stop_on_signals(void)
{
	struct sigaction sa = { .sa_handler = on_stop };

	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	return &stop_flag;
}

void
vdi_cli_log(void *ctx, const char *line)
{
	struct vdi_cli *c = ctx;

	if (!c->quiet)
		fprintf(stderr, "%s: %s\n", c->prog, line);
}

int
vdi_cli_finish(struct vdi_cli *c, int code)
{
	if (vdi_out_free(c->out) < 0 && errno != EPIPE && code == 0) {
		fprintf(stderr, "%s: error: cannot write output: %s\n", c->prog, strerror(errno));
		code = VDI_EFAIL;
	}
	c->out = NULL;
	vdi_db_close(c->db);
	c->db = NULL;
	vdi_config_clear(&c->cfg);
	return code;
}

static void
push(char ***list, size_t *n, const char *s, size_t len)
{
	vdi_strv_push(list, n, vdi_xstrndup(s, len));
}

int
vdi_cli_args(struct vdi_cli *c, int argc, char **argv, char ***list, size_t *n)
{
	char *line = NULL;
	size_t cap = 0;
	ssize_t len;

	(void)c;
	*list = NULL;
	*n = 0;
	if (optind < argc) {
		for (int i = optind; i < argc; i++)
			push(list, n, argv[i], strlen(argv[i]));
		return 0;
	}
	while ((len = getline(&line, &cap, stdin)) >= 0) {
		char *s = line;
		size_t k;
		/* A UTF-8 byte order mark (Windows editors write one) is not part of the first name. */
		if (*n == 0 && strncmp(s, "\xef\xbb\xbf", 3) == 0)
			s += 3;
		/* Lines end in LF or CRLF; fields are separated by white space. */
		while (*s == ' ' || *s == '\t' || *s == '\r')
			s++;
		if (*s == '\0' || *s == '\n' || *s == '#')
			continue;
		k = strcspn(s, " \t\r\n");
		push(list, n, s, k);
	}
	free(line);
	return 0;
}

void
vdi_cli_args_free(char **list, size_t n)
{
	vdi_strv_free(list, n);
}

const char *
vdi_cli_opt_name(const struct option *opts, int val)
{
	for (const struct option *o = opts; o->name; o++)
		if (o->val == val)
			return o->name;
	return "?";
}

int
vdi_cli_dispatch(struct vdi_cli *c, int argc, char **argv, const struct option *opts,
		 const struct vdi_cli_cmd *cmds, void (*opt)(struct vdi_cli *c, int o, const char *arg))
{
	const struct vdi_cli_cmd *cmd;
	int o;

	/* Common options before the command ("+": stop at the first non-option). */
	while ((o = getopt_long(argc, argv, "+" VDI_CLI_SHORT, opts, NULL)) != -1)
		if (!vdi_cli_option(c, o, optarg))
			vdi_cli_usage_error(c, "--%s goes after the command", vdi_cli_opt_name(opts, o));
	if (optind >= argc)
		vdi_cli_usage_error(c, "missing command");
	for (cmd = cmds; cmd->name; cmd++)
		if (strcmp(cmd->name, argv[optind]) == 0)
			break;
	if (!cmd->name)
		vdi_cli_usage_error(c, "unknown command '%s'", argv[optind]);
	/* The command's own options, anywhere among its arguments. */
	argc -= optind;
	argv += optind;
	optind = 0; /* 0, not 1: glibc then starts its scan afresh */
	while ((o = getopt_long(argc, argv, VDI_CLI_SHORT "n", opts, NULL)) != -1) {
		bool ok = false;
		if (o == 'n' && !cmd->changes)
			vdi_cli_usage_error(c, "%s: -n/--dry-run does not apply (it changes nothing)", cmd->name);
		if (vdi_cli_option(c, o, optarg))
			continue;
		for (const int *t = cmd->takes; *t; t++)
			ok |= *t == o;
		if (!ok)
			vdi_cli_usage_error(c, "%s: unknown option --%s", cmd->name, vdi_cli_opt_name(opts, o));
		opt(c, o, optarg);
	}
	return cmd->run(c, argc, argv);
}

/* A progress line is on the terminal (drawn by vdi_cli_progress_note). */
static bool progress_shown;

void
vdi_cli_progress(struct vdi_cli *c, const char *what, int64_t done, int64_t total, bool bytes)
{
	vdi_cli_progress_note(c, what, done, total, bytes, NULL);
}

/* The terminal's width, or 80. */
static int
term_cols(void)
{
	struct winsize ws;

	if (ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col >= 20)
		return ws.ws_col;
	return 80;
}

void
vdi_cli_progress_note(struct vdi_cli *c, const char *what, int64_t done, int64_t total, bool bytes,
		      const char *note)
{
	static struct timespec last;
	struct timespec now;
	char a[24], b[24], line[512];
	int n, cols;

	if (c->quiet || !isatty(STDERR_FILENO))
		return;
	if (done < 0) {
		if (progress_shown)
			fputs("\r\033[K", stderr);
		progress_shown = false;
		return;
	}
	clock_gettime(CLOCK_MONOTONIC, &now);
	if (progress_shown && done != total &&
	    (now.tv_sec - last.tv_sec) * 1000 + (now.tv_nsec - last.tv_nsec) / 1000000 < 100)
		return;
	last = now;
	progress_shown = true;
	if (bytes) {
		vdi_size_format((uint64_t)done, a, sizeof(a));
		vdi_size_format((uint64_t)(total > 0 ? total : 0), b, sizeof(b));
	} else {
		snprintf(a, sizeof(a), "%lld", (long long)done);
		snprintf(b, sizeof(b), "%lld", (long long)total);
	}
	if (total > 0) {
		int w = 20, fill = (int)(w * (double)done / (double)total);
		n = snprintf(line, sizeof(line), "%s: [%.*s%*s] %s/%s %3d%%", what, fill, "####################",
			     w - fill, "", a, b, (int)(100.0 * (double)done / (double)total));
	} else {
		n = snprintf(line, sizeof(line), "%s: %s", what, a);
	}
	if (note && *note && n > 0 && (size_t)n < sizeof(line))
		snprintf(line + n, sizeof(line) - (size_t)n, "  %s", note);
	/* One line that never wraps: a wrapped line cannot be redrawn in place. */
	cols = term_cols() - 1;
	if ((int)strlen(line) > cols)
		line[cols] = '\0';
	fprintf(stderr, "\r%s\033[K", line);
}

void
vdi_cli_progress_line(struct vdi_cli *c, const char *fmt, ...)
{
	va_list ap;

	if (c->quiet || !isatty(STDERR_FILENO) || !isatty(STDOUT_FILENO))
		return;
	fputs(progress_shown ? "\r\033[K" : "", stderr);
	progress_shown = false; /* the next progress call draws the bar again, below this line */
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}
