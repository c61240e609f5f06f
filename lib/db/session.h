/*
 * session.h - sessions in the VMDB: assigned -> starting -> running ->
 * stopping -> ended (with a reason).
 *
 * vm-assign creates them (assign.h); vm-start claims one (state starting,
 * with its pid, committed before any libvirt call), records what it made
 * and moves it to running; ending one frees the host's capacity in the same
 * transaction (the triggers on sessions).  Names of what a session makes
 * in libvirt follow from its id: domain vdi-sID-USER, overlay sID-USER.qcow2;
 * a desktop restored from a warm image runs under the name that image was
 * saved under (vdi_session_warm_names), so every program finds a session's
 * domain by the name the session records.
 */
#ifndef VDI_SESSION_H
#define VDI_SESSION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "db.h"
#include "profile.h"
#include "xml.h"
#include "err.h"

struct vdi_session {
	int64_t id, uservm_id, host_id;
	char *state, *reason, *user;
	char *host, *host_uri, *host_display;  /* the host's name, URI, display address */
	char *host_health;                     /* up, down or unknown, as last polled or watched */
	char *pool, *disk, *seed;              /* the user VM's volumes */
	char *domain, *overlay;
	char *display_address, *display_password;
	int64_t display_port, mem, vcpus, created, changed, pid;
	char owner[160];                       /* the claim's owner token and lease (db.h: claims) */
	int64_t lease;
	char *kind;                            /* desktop; prepare (a first boot, on its own disk); warm (a build) */
	char *master;                          /* the user VM's master and its device profile */
	char *profile, *firmware, *disk_bus, *nic, *video;
	bool rdp;                              /* the master's guest serves RDP */
	char *network, *bridge;                /* the host's network for sessions (NULL: none) */
	char *address;                         /* the guest's address as last seen (NULL: not yet) */
	int64_t address_seen;
	int64_t started;                       /* when it became running (0: not yet) */
	/* What vm-watch saw of its viewers (0: nothing): see vdi_session_set_viewer(). */
	int64_t connected_since, disconnected_since;
	int64_t ticket_expires;                /* the display password's end (0: none) */
	int64_t watch_since, watch_seen;       /* its host's watch (host.h: vdi_host_watch_begin) */
	/* While migrating: the host it goes to (0: none), as the VMDB names it (migrate.h). */
	int64_t migrate_to;
	char *to_host, *to_uri, *to_display, *to_migration_uri, *to_network, *to_bridge;
	int64_t migrated;                      /* when it last moved (0: never) */
	/*
	 * Warm desktops (schema 11): the warm build this session was restored
	 * from (0: it booted), and its user VM's warm build now (0: cold).
	 */
	int64_t warm, uservm_warm;
	/*
	 * The browser console (schema 12): its VNC port (0: none) and password
	 * (vm-console's alone), and how many browser consoles are open now.
	 */
	int64_t console_port;
	char *console_password;
	int64_t consoles;
	char *home;                            /* the user's home disk's volume, in pool (NULL: none; schema 13) */
};

/*
 * A session's viewer, as vm-watch saw it: connected (the first client
 * got past authentication) sets connected_since and clears
 * disconnected_since; disconnected (the last one left) sets
 * disconnected_since.  at is the time of the event.  No-op once the
 * session is ended.  1: changed, 0: nothing to change.
 */
int vdi_session_set_viewer(struct vdi_db *db, int64_t id, bool connected, int64_t at, struct vdi_err *err);
/* Record a new display password and when it stops working (0: never). */
int vdi_session_set_ticket(struct vdi_db *db, int64_t id, const char *password, int64_t expires,
			   struct vdi_err *err);
/*
 * Is its host watched by a live vm-watch now (a watch affirmed within
 * VDI_WATCH_STALE seconds of now)?  Else what it recorded of viewers may
 * be out of date.
 */
bool vdi_session_watched(const struct vdi_session *s, int64_t now);

/* Is the session's viewer connected now (by what vm-watch recorded)? */
bool vdi_session_connected(const struct vdi_session *s);

/* Record the guest's address as libvirt reported it (no-op once the session ended). */
int vdi_session_set_address(struct vdi_db *db, int64_t id, const char *address, struct vdi_err *err);
/* A first boot that prepares the user VM, not a desktop? */
bool vdi_session_is_prepare(const struct vdi_session *s);
/* A boot that makes the user VM's warm image (kind warm), not a desktop? */
bool vdi_session_is_warm_build(const struct vdi_session *s);
/* A user's desktop (kind desktop), not a boot that makes the user VM? */
bool vdi_session_is_desktop(const struct vdi_session *s);
/*
 * The names of warm build's files and domain (any may be NULL): domain
 * vdi-wBUILD-USER (a restore keeps the name it was saved under), layer
 * wBUILD-USER.qcow2 and image wBUILD-USER.save in the user VM's pool.
 */
void vdi_session_warm_names(int64_t build, const char *user, char *domain, size_t dlen, char *layer, size_t llen,
			    char *image, size_t ilen);
/* s's device profile as registered, borrowed from s. */
struct vdi_profile vdi_session_profile(const struct vdi_session *s);


void vdi_session_names(int64_t id, const char *user, char *domain, size_t dlen, char *overlay, size_t olen);
/* How many sessions that are not ended stand on warm build's layer (restored from its image). */
int vdi_session_warm_users(struct vdi_db *db, int64_t build, int64_t *n, struct vdi_err *err);

int vdi_session_get(struct vdi_db *db, int64_t id, struct vdi_session *s, struct vdi_err *err);
/* The user's session that is not ended; code 3 if none. */
int vdi_session_of_user(struct vdi_db *db, const char *user, struct vdi_session *s, struct vdi_err *err);
/*
 * The session that is not ended whose domain is named domain (the name it
 * records: vm-watch finds a domain's session so); code 3 if none.
 */
int vdi_session_of_domain(struct vdi_db *db, const char *domain, struct vdi_session *s, struct vdi_err *err);
/* The user's last desktop session that ended (its reason, and changed: when); code 3 if none. */
int vdi_session_last_of_user(struct vdi_db *db, const char *user, struct vdi_session *s, struct vdi_err *err);
void vdi_session_clear(struct vdi_session *s);

/*
 * Claim session id for starting: assigned, or starting under a process that
 * is gone.  The names of what will be made, the warm build it is restored
 * from (warm; 0: it boots), the display password and the browser
 * console's (NULL: none) are committed with the claim (a password already
 * recorded by a dead starter is kept: its domain may be running), so a rerun or vm-reap can find them.
 * Returns 0 claimed, 1 it is running already (nothing to do), -1 error (5
 * when another live process is starting it, or it is ending).
 */
/*
 * The same, with storm control across processes and brokers: an assigned
 * session is not claimed while per_host starts or more are in flight on its
 * host (sessions 'starting' under live claims, counted under the write
 * lock); then it returns 2 and the caller waits.  per_host 0: no gate.
 */
int vdi_session_claim_start_gated(struct vdi_db *db, int64_t id, const char *domain, const char *overlay,
				  int64_t warm, const char *address, const char *password,
				  const char *console_password, int64_t per_host, struct vdi_err *err);
int vdi_session_claim_start(struct vdi_db *db, int64_t id, const char *domain, const char *overlay, int64_t warm,
			    const char *address, const char *password, const char *console_password,
			    struct vdi_err *err);
/*
 * starting -> running, only while this process's claim holds (5 when
 * another process ended or took it); warm: the warm build it was restored
 * from (0: it booted).
 */
int vdi_session_set_running(struct vdi_db *db, int64_t id, const struct vdi_ports *port, int64_t warm,
			    struct vdi_err *err);
/* Every session that is not ended, by host then id. */
int vdi_session_list_live(struct vdi_db *db, struct vdi_session **out, size_t *n, struct vdi_err *err);
void vdi_sessions_free(struct vdi_session *ss, size_t n);
/* Sessions on host (NULL: any) in state (NULL: any that is not ended), newest first. */
int vdi_session_list(struct vdi_db *db, const char *host, const char *state, struct vdi_session **out,
		     size_t *n, struct vdi_err *err);
/*
 * Move a session to stopping, committed before its domain is destroyed
 * (rule 2).  expect (NULL: any state that is not ended) is the state the
 * caller planned on: when the session has moved on meanwhile, nothing
 * changes and 1 is returned.  A session being started by a live process
 * is not taken from it: 5.  0: claimed.
 */
int vdi_session_claim_stop(struct vdi_db *db, int64_t id, const char *expect, struct vdi_err *err);

/*
 * End a session: its capacity is freed in the same transaction.  With
 * expect, only while it is still in that state.  0: ended; 1: it was
 * ended already or has moved on (nothing changed); -1: error.
 */
int vdi_session_end(struct vdi_db *db, int64_t id, const char *expect, const char *reason,
		    const char *detail, struct vdi_err *err);

/*
 * Inside the caller's write transaction (session.c writes every session
 * row; the triggers keep the hosts' capacity in the same transaction):
 * a new session in state assigned on host, of kind "desktop" or "prepare",
 * its id in *id; running -> migrating to host, held by this process; every
 * session on host that is not ended, ended now for reason; the ended
 * sessions of a user VM that goes, forgotten.
 */
int vdi_session_insert(struct vdi_db *db, int64_t uservm, int64_t host, int64_t mem, int64_t vcpus,
		       const char *kind, int64_t now, int64_t *id, struct vdi_err *err);
/* Charge session id to a group (vm-group), inside the caller's transaction. */
int vdi_session_set_group(struct vdi_db *db, int64_t id, const char *grp, struct vdi_err *err);
int vdi_session_move_begin(struct vdi_db *db, int64_t id, int64_t host, int64_t now, struct vdi_err *err);
int vdi_session_end_on_host(struct vdi_db *db, int64_t host, const char *reason, int64_t now,
			    struct vdi_err *err);
int vdi_session_forget_ended(struct vdi_db *db, int64_t uservm, struct vdi_err *err);
/* The overlay names of host's ended sessions (the list is the caller's: vdi_strv_free). */
int vdi_session_overlays_ended(struct vdi_db *db, int64_t host, char ***out, size_t *n, struct vdi_err *err);
/* The sessions on a fenced host, ended host-lost (but a move, which vm-reap settles); *n: how many. */
int vdi_session_end_fenced(struct vdi_db *db, int64_t host, int64_t now, int64_t *n, struct vdi_err *err);

/*
 * Moves (migrate.h).  vdi_assign with move set takes a running session to
 * migrating, with the host it goes to reserved.  A process that finds one
 * left migrating by a dead process takes it over: 0 taken, 1 it is not
 * migrating any more, -1 error (5 while its mover lives).  The mover then
 * records where the domain runs: moved (on migrate_to, whose SPICE port
 * and listen address are port and display_address; the source's share of
 * capacity is given back) or not (it stays; the destination's reservation
 * is given back).  Only while this process holds it: else 5.
 */
int vdi_session_claim_move(struct vdi_db *db, int64_t id, struct vdi_err *err);
int vdi_session_end_move(struct vdi_db *db, int64_t id, bool moved, const struct vdi_ports *port,
			 const char *display_address,
			 const char *detail, struct vdi_err *err);

#endif
