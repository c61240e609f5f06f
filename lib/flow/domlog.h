/*
 * domlog.h - what a host's libvirt wrote about a domain, quoted when a
 * guest stops on its own (paused on an error, crashed): the last lines of
 * QEMU's log (DOMAIN.log: "KVM internal error", "emulation failure") and
 * of its serial console (DOMAIN.console.log: a kernel panic).
 *
 * vdi-tools has no agent and no ssh on a host, so it reads them only where
 * this machine sees them: host_log_dir (vdi.conf; %h is the host's name,
 * for logs shared over NFS or gathered by syslog), else console_log_dir
 * for a host whose URI names no server (this machine), else nowhere.
 */
#ifndef VDI_DOMLOG_H
#define VDI_DOMLOG_H

#include <stddef.h>

struct vdi_domlog_where {
	const char *host_log_dir;     /* "" or NULL: none named */
	const char *console_log_dir;  /* libvirt's log folder on a host */
};

/*
 * "QEMU: LINE | LINE; console: LINE | LINE" (escaped, at most lines of
 * each) into buf, or "" when neither log can be read here.  Reads files
 * only: callable anywhere, never blocks on a planted FIFO.
 */
void vdi_domlog_tail(const struct vdi_domlog_where *w, const char *host, const char *uri, const char *domain,
		     int lines, char *buf, size_t len);

/*
 * One line for a guest that stopped running on its own: "stopped running:
 * STUCK; the host logged: QEMU: ...", the log part left out
 * when nothing can be read here.
 */
void vdi_domlog_say(const struct vdi_domlog_where *w, const char *host, const char *uri, const char *domain,
		    const char *stuck, char *buf, size_t len);

/*
 * Has the serial console of domain said text (a line the guest prints when
 * its desktop is up)?  1 yes, 0 not yet, -1 its log cannot be read here.
 * A guest writes its console: text is only looked for, never parsed.
 */
int vdi_domlog_console_has(const struct vdi_domlog_where *w, const char *host, const char *uri, const char *domain,
			   const char *text);

#endif
