/*
 * config.h - settings: command line > environment > config file > default.
 *
 * vdi_config_load() fills a struct vdi_config with the defaults, then the
 * config file ($VDI_CONFIG, else /etc/vdi/vdi.conf when it exists), then
 * the environment ($VDI_DB).  The command applies its own options last.
 * The file is "key = value" lines; '#' starts a comment; unknown keys and
 * bad values are errors with the file name and line number (vdi.conf(5)).
 * The struct owns its strings; vdi_config_clear() frees them.
 */
#ifndef VDI_CONFIG_H
#define VDI_CONFIG_H

#include <stdint.h>

#include "err.h"

#define VDI_CONFIG_DEFAULT "/etc/vdi/vdi.conf"
#define VDI_DB_DEFAULT "/var/lib/vdi/vdi.db"
/* Locally administered, unicast; "VD". */
#define VDI_MAC_PREFIX_DEFAULT "02:56:44"

struct vdi_config {
	char *config_path;       /* the file read, or NULL */
	char *db;                /* db: the VMDB path */
	int64_t busy_timeout;    /* busy_timeout: ms to wait for a VMDB lock */
	int64_t poll_timeout;    /* poll_timeout: ms per host to connect and answer */
	int64_t poll_max_age;    /* poll_max_age: ms after which poll data is stale */
	int64_t poll_parallel;   /* poll_parallel: hosts polled at once */
	char *pool;              /* pool: the default storage pool */
	char *policy;            /* policy: vm-assign's default policy */
	int64_t image_max_size;  /* image_max_size: bytes an image import may be */
	int64_t start_retries;   /* start_retries: other hosts vm-start tries after a failure */
	int64_t copy_parallel;   /* copy_parallel: user VMs made at once in one vm-copy */
	int64_t start_parallel;  /* start_parallel: starts in flight in one vm-start */
	int64_t start_parallel_host; /* start_parallel_host: of those, on one host */
	int64_t assign_ttl;      /* assign_ttl: ms an assigned session may wait for vm-start */
	int64_t start_ttl;       /* start_ttl: ms a session may stay starting */
	int64_t stop_ttl;        /* stop_ttl: ms a session may stay stopping */
	int64_t host_lost_after; /* host_lost_after: ms down before its sessions end host-lost */
	int64_t prepare_timeout; /* prepare_timeout: ms a user VM's first boot may take */
	int64_t address_timeout; /* address_timeout: ms vm-start --rdp waits for the guest's address */
	char *domain_type;       /* domain_type: auto, kvm or qemu */
	char *mac_prefix;        /* mac_prefix: the first 3 bytes of every session's MAC */
	char *console_log_dir;   /* console_log_dir: where hosts' libvirt logs serial consoles */
	char *signout_url;       /* signout_url: the page's "Sign out" link ("": none) */
	char *host_log_dir;      /* host_log_dir: where this machine reads a host's QEMU logs (%h: its name); "" */
	int64_t disconnect_timeout; /* disconnect_timeout: ms a session may have no viewer (0: forever) */
	int64_t connect_timeout; /* connect_timeout: ms a started session may wait for its first viewer (0: forever) */
	int64_t ticket_ttl;      /* ticket_ttl: ms vm-connect's one-time display password works */
	int64_t migrate_timeout; /* migrate_timeout: ms one live migration may take before it is aborted */
	int64_t migrate_parallel; /* migrate_parallel: moves in flight in one drain or rebalance */
	int64_t migrate_bandwidth; /* migrate_bandwidth: MiB/s one migration may use (0: no limit) */
	int64_t migrate_unsafe;  /* migrate_unsafe: 1 if the pool is shared storage libvirt cannot tell */
	int64_t rebalance_threshold; /* rebalance_threshold: points of spread vm-rebalance tolerates */
	int64_t rebalance_threshold_sessions; /* rebalance_threshold_sessions: sessions above the mean */
	int64_t rebalance_rest;  /* rebalance_rest: ms a moved session is left where it went */
	char *fence_command;     /* fence_command: "" or the fence agent vm-hosts fence runs as CMD HOST URI */
	int64_t fence_timeout;   /* fence_timeout: ms the fence agent may take */
	int64_t events_keep;     /* events_keep: ms vm-reap keeps events (0: forever) */
	int64_t warm;            /* warm: 1 to build warm images and restore desktops from them */
	char *warm_ready;        /* warm_ready: the console line that says a desktop is up ("": its address) */
	int64_t warm_settle;     /* warm_settle: ms after that before its memory is saved */
	int64_t warm_timeout;    /* warm_timeout: ms a warm build's desktop may take to come up */
	int64_t warm_retry;      /* warm_retry: ms after a failed warm build before the next */
	/* The browser console (vm-console(1)). */
	int64_t console;         /* console: 1 to give desktops a VNC display for the browser console */
	char *console_socket;    /* console_socket: the Unix socket vm-console listens on */
	char *console_path;      /* console_path: the websocket's path on the site, which the page opens */
	char *novnc_url;         /* novnc_url: where the web server serves noVNC's files */
	char *console_origin;    /* console_origin: the site's origin ("": the request's own Host) */
	char *console_user_header; /* console_user_header: the header the web server names its user in */
	int64_t console_ticket_ttl; /* console_ticket_ttl: ms a console ticket may wait for its first use */
	int64_t console_handshake_timeout; /* console_handshake_timeout: ms a handshake may take */
	int64_t console_idle_timeout; /* console_idle_timeout: ms a console may pass no data (0: forever) */
	int64_t console_max_frame; /* console_max_frame: bytes of the largest message a browser may send */
	int64_t console_per_user; /* console_per_user: browser consoles one user may have open */
	int64_t home_max;         /* home_max: the largest home disk vm-copy makes */
	int64_t request_home_max; /* request_home_max: the largest one the web page may ask for (0: none) */
	char *home_mount;         /* home_mount: where Linux guests mount the home disk */
	int64_t update_parallel;  /* update_parallel: user VMs one vm-copy --update remakes at once */
};

int vdi_config_load(struct vdi_config *cfg, struct vdi_err *err);
/* Set one setting by name from text, as the file does (for tests and -c). */
int vdi_config_set(struct vdi_config *cfg, const char *key, const char *val, struct vdi_err *err);
void vdi_config_clear(struct vdi_config *cfg);

#endif
