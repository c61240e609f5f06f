/* reap.c - planning vm-reap's work (see reap.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mem.h"
#include "reap.h"

const char *
vdi_reap_action_name(enum vdi_reap_action a)
{
	switch (a) {
	case VDI_REAP_END: return "end";
	case VDI_REAP_END_DB: return "end";
	case VDI_REAP_FINISH_START: return "finish";
	case VDI_REAP_DESTROY_DOMAIN: return "destroy";
	case VDI_REAP_DELETE_OVERLAY: return "delete";
	case VDI_REAP_WAIT: return "wait";
	case VDI_REAP_SETTLE: return "settle";
	}
	return "?";
}

static void
add(struct vdi_reap_item **v, size_t *n, enum vdi_reap_action a, int64_t session, size_t host,
    const char *reason, const char *object)
{
	struct vdi_reap_item *t = vdi_grow(*v, *n, sizeof(*t));

	*v = t;
	t[*n].action = a;
	t[*n].session = session;
	t[*n].host = host;
	t[*n].reason = reason;
	snprintf(t[*n].object, sizeof(t[*n].object), "%s", object);
	(*n)++;
}

static const struct vdi_domain_info *
find_dom(const struct vdi_node_report *r, int64_t session)
{
	if (!r)
		return NULL;
	for (size_t i = 0; i < r->ndoms; i++)
		if (r->doms[i].ours && r->doms[i].session_id == session)
			return &r->doms[i];
	return NULL;
}

static bool
has_str(char *const *v, size_t n, const char *s)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(v[i], s) == 0)
			return true;
	return false;
}

static size_t
count(char *const *v)
{
	size_t n = 0;

	while (v[n])
		n++;
	return n;
}

static bool
has_id(const int64_t *v, size_t n, int64_t id)
{
	for (size_t i = 0; i < n; i++)
		if (v[i] == id)
			return true;
	return false;
}

/* The overlay name's session id ("s42-alice.qcow2" -> 42), or 0. */
static int64_t
overlay_session(const char *name)
{
	char *end;
	long long id;

	if (name[0] != 's' || name[1] < '1' || name[1] > '9')
		return 0;
	id = strtoll(name + 1, &end, 10);
	if (*end != '-' || strlen(end) < 8 || strcmp(end + strlen(end) - 6, ".qcow2") != 0)
		return 0;
	return id;
}

/* A warm build's file's build id ("w42-alice.qcow2", "w42-alice.save" -> 42), or 0. */
static int64_t
warm_file_build(const char *name)
{
	char *end;
	long long id;
	size_t len;

	if (name[0] != 'w' || name[1] < '1' || name[1] > '9')
		return 0;
	id = strtoll(name + 1, &end, 10);
	len = strlen(end);
	if (*end != '-' || len < 7 ||
	    (strcmp(end + len - 6, ".qcow2") != 0 && strcmp(end + len - 5, ".save") != 0))
		return 0;
	return id;
}

/* Does anything stand on warm build id: a user VM's image, a live build, a live session restored from it? */
static bool
warm_owned(const struct vdi_session *ss, size_t nss, const struct vdi_reap_opts *o, int64_t id)
{
	if (has_id(o->warm_keep, o->nwarm_keep, id))
		return true;
	for (size_t i = 0; i < nss; i++)
		if (ss[i].id == id || ss[i].warm == id)
			return true;
	return false;
}

static int64_t
max64(int64_t a, int64_t b)
{
	return a > b ? a : b;
}

/* Why a desktop's viewers say it should end (NULL: they do not). */
static const char *
viewer_reason(const struct vdi_session *s, const struct vdi_reap_opts *o)
{
	if (s->watch_since <= 0 || o->now - s->watch_seen > o->watch_stale)
		return NULL; /* nobody watches its host: what is recorded may be stale */
	if (s->disconnected_since > 0 && o->disconnect_timeout > 0 &&
	    o->now - max64(s->disconnected_since, s->watch_since) > o->disconnect_timeout)
		return "disconnected";
	if (s->connected_since == 0 && o->connect_timeout > 0 &&
	    o->now - max64(s->started ? s->started : s->changed, s->watch_since) > o->connect_timeout)
		return "never-connected";
	return NULL;
}

/* What session s is due for, if anything. */
static void
plan_session(const struct vdi_session *s, const struct vdi_reap_host *hs, size_t nhs,
	     const struct vdi_reap_opts *o, struct vdi_reap_item **v, size_t *n)
{
	const struct vdi_reap_host *h = NULL;
	const struct vdi_domain_info *d;
	size_t hi = 0;
	char obj[160];
	bool busy = o->claim_alive && s->pid && o->claim_alive(s->pid, s->owner, s->lease);
	bool prep = !vdi_session_is_desktop(s); /* a first boot or a warm build: no viewer, no max age */
	bool named = has_str(o->users, o->nusers, s->user) || has_id(o->ids, o->nids, s->id) ||
		     has_id(o->hosts, o->nhosts, s->host_id);

	snprintf(obj, sizeof(obj), "session %lld (%s on %s)", (long long)s->id, s->user,
		 s->host ? s->host : "no host");
	for (hi = 0; hi < nhs; hi++)
		if (hs[hi].id == s->host_id) {
			h = &hs[hi];
			break;
		}
	/* Sessions with no libvirt objects yet need no host to end. */
	if (strcmp(s->state, "assigned") == 0) {
		if (named)
			add(v, n, VDI_REAP_END_DB, s->id, hi, "admin", obj);
		else if (o->now - s->created > o->assign_ttl)
			add(v, n, VDI_REAP_END_DB, s->id, hi, "expired", obj);
		else if (!prep && o->max_age > 0 && o->now - s->created > o->max_age)
			add(v, n, VDI_REAP_END_DB, s->id, hi, "expired", obj);
		return;
	}
	/* A move is settled first, by asking both hosts (whatever else it is due for comes next run). */
	if (strcmp(s->state, "migrating") == 0) {
		if (!busy)
			add(v, n, VDI_REAP_SETTLE, s->id, hi, "mover-gone", obj);
		return;
	}
	if (!h || !h->rep || h->rep->err.code) {
		/* The host does not answer: its sessions wait, until it is lost. */
		if (h && h->down_since > 0 && o->now - h->down_since > o->host_lost_after)
			add(v, n, VDI_REAP_END_DB, s->id, hi, "host-lost", obj);
		else
			add(v, n, VDI_REAP_WAIT, s->id, hi, "host-down", obj);
		return;
	}
	d = find_dom(h->rep, s->id);
	if (named) {
		add(v, n, VDI_REAP_END, s->id, hi, "admin", obj);
	} else if (!prep && o->max_age > 0 && o->now - s->created > o->max_age) {
		add(v, n, VDI_REAP_END, s->id, hi, "expired", obj);
	} else if (strcmp(s->state, "running") == 0) {
		/*
		 * Domain gone: the user powered off (a first boot: it is done);
		 * overlay gone too: deleted behind our back.  A first boot that
		 * runs past prepare_timeout fails.
		 */
		const char *why = d && !prep ? viewer_reason(s, o) : NULL;
		if (d && prep && o->prepare_timeout > 0 && o->now - s->changed > o->prepare_timeout)
			add(v, n, VDI_REAP_END, s->id, hi, "expired", obj);
		else if (why)
			add(v, n, VDI_REAP_END, s->id, hi, why, obj);
		else if (!d)
			add(v, n, VDI_REAP_END, s->id, hi,
			    h->volumes && s->overlay && !has_str(h->volumes, count(h->volumes), s->overlay) ?
			    "orphan" : "poweroff", obj);
	} else if (strcmp(s->state, "starting") == 0) {
		/* A warm build whose builder died is not finished: nobody would save it. */
		bool build = vdi_session_is_warm_build(s);
		if (!busy && o->now - s->changed > o->start_ttl)
			add(v, n, d && !build ? VDI_REAP_FINISH_START : VDI_REAP_END, s->id, hi,
			    d && !build ? "running" : "failed", obj);
	} else if (strcmp(s->state, "stopping") == 0) {
		if (!busy && o->now - s->changed > o->stop_ttl)
			add(v, n, VDI_REAP_END, s->id, hi, "admin", obj);
	}
}

/*
 * Domains of ours that no session that is not ended runs there: on every
 * host with --orphans, and always on a fenced host that answers again.
 */
static void
plan_orphan_domains(const struct vdi_session *ss, size_t nss, const struct vdi_reap_host *hs, size_t nhs,
		    bool all, struct vdi_reap_item **v, size_t *n)
{
	for (size_t hi = 0; hi < nhs; hi++) {
		const struct vdi_reap_host *h = &hs[hi];

		if (!h->rep || h->rep->err.code || !(all || h->fenced))
			continue;
		for (size_t k = 0; k < h->rep->ndoms; k++) {
			const struct vdi_domain_info *d = &h->rep->doms[k];
			bool owned = false;
			if (!d->ours)
				continue;
			for (size_t i = 0; i < nss; i++)
				owned |= ss[i].id == d->session_id && (ss[i].host_id == h->id || ss[i].migrate_to == h->id);
			if (!owned)
				add(v, n, VDI_REAP_DESTROY_DOMAIN, d->session_id, hi, "orphan", d->name);
		}
	}
}

/*
 * Overlays of no session: each shared pool once, through its first host,
 * and only if all its hosts answered (a fenced host, vouched off, need not).
 */
static void
plan_orphan_overlays(const struct vdi_session *ss, size_t nss, const struct vdi_reap_host *hs, size_t nhs,
		     const struct vdi_reap_opts *o, struct vdi_reap_item **v, size_t *n)
{
	for (size_t hi = 0; hi < nhs; hi++) {
		const struct vdi_reap_host *h = &hs[hi];
		size_t silent = nhs;
		bool first = true;
		char obj[160];

		if (!h->pool)
			continue;
		for (size_t j = 0; j < hi; j++)
			first &= !(hs[j].pool && strcmp(hs[j].pool, h->pool) == 0);
		if (!first)
			continue;
		for (size_t j = 0; j < nhs && silent == nhs; j++)
			if (hs[j].pool && strcmp(hs[j].pool, h->pool) == 0 && (!hs[j].rep || hs[j].rep->err.code) &&
			    !hs[j].fenced)
				silent = j;
		if (silent < nhs || !h->volumes) {
			snprintf(obj, sizeof(obj), "overlays in pool %s", h->pool);
			add(v, n, VDI_REAP_WAIT, 0, silent < nhs ? silent : hi, "host-down", obj);
			continue;
		}
		for (size_t k = 0; h->volumes[k]; k++) {
			int64_t id = overlay_session(h->volumes[k]), build = warm_file_build(h->volumes[k]);
			bool owned = false;
			/* A warm layer or image that no user VM, build or live session stands on. */
			if (build && !warm_owned(ss, nss, o, build))
				add(v, n, VDI_REAP_DELETE_OVERLAY, 0, hi, "orphan", h->volumes[k]);
			if (!id)
				continue;
			for (size_t i = 0; i < nss; i++)
				owned |= ss[i].id == id;
			/* Its domain still runs somewhere (an orphan being destroyed): keep the disk it has open. */
			for (size_t j = 0; j < nhs && !owned; j++)
				owned |= find_dom(hs[j].rep, id) != NULL;
			if (!owned)
				add(v, n, VDI_REAP_DELETE_OVERLAY, id, hi, "orphan", h->volumes[k]);
		}
	}
}

int
vdi_reap_plan(const struct vdi_session *ss, size_t nss, const struct vdi_reap_host *hs, size_t nhs,
	      const struct vdi_reap_opts *o, struct vdi_reap_item **items, size_t *nitems)
{
	struct vdi_reap_item *v = NULL;
	size_t n = 0;

	for (size_t i = 0; i < nss; i++)
		plan_session(&ss[i], hs, nhs, o, &v, &n);
	plan_orphan_domains(ss, nss, hs, nhs, o->orphans, &v, &n);
	if (o->orphans)
		plan_orphan_overlays(ss, nss, hs, nhs, o, &v, &n);
	*items = v;
	*nitems = n;
	return 0;
}
