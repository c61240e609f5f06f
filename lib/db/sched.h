/*
 * sched.h - choosing a host for a session: filters, then a policy.
 *
 * Pure logic, no I/O: the caller fills an array of candidate hosts with
 * what the VMDB says of them, vdi_sched_filter() gives each its first
 * failing filter (or none), vdi_sched_pick() scores the eligible ones
 * under a policy and returns the winner.  The array must be in host name
 * order: ties always break by it, so the same VMDB and the same request
 * give the same answer.
 *
 * Policies: least-sessions (fewest sessions), least-load (lowest share of
 * the dominant resource, memory or vCPUs, after placing, plus a tenth of
 * the polled CPU load), round-robin (the next name after the last pick),
 * sticky (the host of the user's last session, else the fallback), pack
 * (the fullest memory after placing), random2 (the better least-load
 * score of two hosts drawn at random).
 *
 * Filters, in order (the first that fails names the reason):
 *   down, maintenance, draining, unknown  the host's state
 *   stale      last poll older than poll_max_age
 *   pool       the host does not see the user VM's pool
 *   tags       the host lacks a tag the user VM needs
 *   sessions   at max_sessions
 *   memory     mem_used + mem > mem_total * ram_ratio - reserve_mem
 *   vcpus      vcpus_used + vcpus > vcpus * cpu_ratio
 */
#ifndef VDI_SCHED_H
#define VDI_SCHED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum vdi_policy {
	VDI_POLICY_LEAST_SESSIONS,
	VDI_POLICY_LEAST_LOAD,
	VDI_POLICY_ROUND_ROBIN,
	VDI_POLICY_STICKY,
	VDI_POLICY_PACK,
	VDI_POLICY_RANDOM2,
};

int vdi_policy_parse(const char *s, enum vdi_policy *p);
const char *vdi_policy_name(enum vdi_policy p);

struct vdi_sched_host {
	/* in */
	int64_t id;
	const char *name;
	const char *admin, *health;
	int64_t last_ok;          /* 0: never */
	bool pool_ok, tags_ok;
	int64_t mem_total, reserve_mem, mem_used;
	double ram_ratio;
	int64_t vcpus, vcpus_used;
	double cpu_ratio;
	int64_t sessions, max_sessions; /* max_sessions -1: no limit */
	double load;
	bool load_known;
	bool rr_after;            /* round-robin: name comes after the last host picked */
	/* out */
	const char *reject;       /* NULL: eligible */
	char detail[160];         /* the numbers behind the verdict */
	double score;             /* lower is better */
	int rank;                 /* 1 = winner; 0 = not ranked */
};

struct vdi_sched_req {
	int64_t mem, vcpus;
	int64_t now, max_age;     /* seconds */
};

/* Memory and vCPUs the host may give out in all. */
int64_t vdi_sched_mem_cap(const struct vdi_sched_host *h);
int64_t vdi_sched_vcpu_cap(const struct vdi_sched_host *h);

/* Give each host its first failing filter (reject), or none. */
void vdi_sched_filter(struct vdi_sched_host *hs, size_t n, const struct vdi_sched_req *r);
/* A host's score under least-sessions, least-load, random2 or pack (lower is better). */
double vdi_sched_score(const struct vdi_sched_host *h, const struct vdi_sched_req *r, enum vdi_policy p);
/* Write the numbers behind a host's verdict into h->detail (for people: costs a few printfs). */
void vdi_sched_detail(struct vdi_sched_host *h, const struct vdi_sched_req *r);

struct vdi_sched_ctx {
	enum vdi_policy policy;
	enum vdi_policy fallback;  /* for sticky when its host fails the filters */
	const char *rr_last;       /* round-robin: the host picked last, or NULL (for why) */
	int64_t sticky_host;       /* sticky: the host of the user's last session, or 0 */
	uint64_t *rng;             /* random2: the generator's state */
	bool rank_all;             /* rank every eligible host (for --explain), not just find the best */
	char why[256];             /* out: why the winner won */
};

/* Score and rank the eligible hosts; the winner's index, or -1 if none is eligible. */
int vdi_sched_pick(struct vdi_sched_host *hs, size_t n, const struct vdi_sched_req *r,
		   struct vdi_sched_ctx *ctx);

/* "no host: 3 draining, 2 full (memory)" from the rejects. */
/*
 * The short form of a pick for the record: "least-sessions: h1 (score 0),
 * runner-up h2 (score 1)", or "no runner-up" when win was the only
 * eligible host that the pick saw.  After vdi_sched_pick.
 */
void vdi_sched_why_short(const struct vdi_sched_host *hs, size_t n, int win, enum vdi_policy p,
			 char *buf, size_t len);
void vdi_sched_why_none(const struct vdi_sched_host *hs, size_t n, char *buf, size_t len);

/* A small, good PRNG (splitmix64), so --seed gives the same picks everywhere. */
uint64_t vdi_rand_next(uint64_t *state);

#endif
