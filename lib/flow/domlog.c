/* domlog.c - the last lines of a domain's logs where this machine can read them (see domlog.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "domlog.h"
#include "file.h"
#include "names.h"

/* The folder of host's logs here, into dir; 0, or -1 when there is none to read. */
static int
log_dir(const struct vdi_domlog_where *w, const char *host, const char *uri, char *dir, size_t len)
{
	char server[256];
	size_t o = 0;

	if (w->host_log_dir && *w->host_log_dir) {
		/* %h: the host's name (a checked name: no slash, no dot-dot); %%: a per cent sign. */
		for (const char *p = w->host_log_dir; *p && o + 1 < len; p++) {
			if (p[0] == '%' && (p[1] == 'h' || p[1] == '%')) {
				const char *s = *++p == 'h' ? host : "%";
				size_t n = strlen(s);
				if (o + n >= len)
					return -1;
				memcpy(dir + o, s, n);
				o += n;
			} else {
				dir[o++] = *p;
			}
		}
		dir[o] = '\0';
		return 0;
	}
	vdi_uri_host(uri, server, sizeof(server));
	if (server[0] || !w->console_log_dir || !*w->console_log_dir)
		return -1;
	snprintf(dir, len, "%s", w->console_log_dir);
	return 0;
}

/* The lines worth quoting; the rest (register dumps, boot chatter) only when none of these is there. */
static const char *const qemu_words[] = { "error", "fail", "shutting down", "terminating", "panic", NULL };
static const char *const console_words[] = { "panic", "error", "fail", "oops", "bug:", NULL };

void
vdi_domlog_tail(const struct vdi_domlog_where *w, const char *host, const char *uri, const char *domain,
		int lines, char *buf, size_t len)
{
	char dir[512], path[768], qemu[512], console[512];

	buf[0] = '\0';
	if (!host || !uri || !domain || log_dir(w, host, uri, dir, sizeof(dir)) < 0)
		return;
	snprintf(path, sizeof(path), "%s/%s.log", dir, domain);
	vdi_file_tail(path, lines, qemu_words, qemu, sizeof(qemu));
	snprintf(path, sizeof(path), "%s/%s.console.log", dir, domain);
	vdi_file_tail(path, lines, console_words, console, sizeof(console));
	snprintf(buf, len, "%s%s%s%s%s", qemu[0] ? "QEMU: " : "", qemu, qemu[0] && console[0] ? "; " : "",
		 console[0] ? "console: " : "", console);
}

void
vdi_domlog_say(const struct vdi_domlog_where *w, const char *host, const char *uri, const char *domain,
	       const char *stuck, char *buf, size_t len)
{
	char logged[700];

	vdi_domlog_tail(w, host, uri, domain, 3, logged, sizeof(logged));
	snprintf(buf, len, "stopped running: %s%s%s", stuck, logged[0] ? "; the host logged: " : "", logged);
}

int
vdi_domlog_console_has(const struct vdi_domlog_where *w, const char *host, const char *uri, const char *domain,
		       const char *text)
{
	char dir[512], path[768], *buf = NULL;
	size_t len = 0;
	int ret;

	if (!host || !uri || !domain || log_dir(w, host, uri, dir, sizeof(dir)) < 0)
		return -1;
	snprintf(path, sizeof(path), "%s/%s.console.log", dir, domain);
	/* Not there yet (QEMU opens it as it starts) is "not yet"; a file that is no regular one, unreadable. */
	if (access(path, F_OK) < 0)
		return 0;
	if (vdi_file_read_small(path, 4u << 20, &buf, &len, VDI_ERR_SCRATCH) < 0)
		return -1;
	ret = memmem(buf, len, text, strlen(text)) != NULL;
	free(buf);
	return ret;
}
