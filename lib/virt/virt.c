/*
 * virt.c - bounded libvirt connections and host probing (see virt.h).
 *
 * Bounding time: libvirt has no connect timeout of its own, and a host
 * that accepts a connection but never answers would hang virConnectOpen
 * forever.  So each slow piece of work runs in a detached thread that
 * owns a reference to its job; the caller waits on a condition variable
 * until the job is done or its deadline passes.  A job given up keeps
 * running until libvirt returns, then frees itself; the caller has moved
 * on with a "no answer" error.  Keepalive (which needs libvirt's event
 * loop, run here in a thread of its own) catches hosts that die later.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>
#include <libvirt/libvirt-qemu.h>

#include "mem.h"
#include "meta.h"
#include "strv.h"
#include "virt.h"

#define KEEPALIVE_INTERVAL 3 /* seconds between keepalive probes */
#define KEEPALIVE_COUNT 2    /* unanswered probes before the connection is closed */
#define LOAD_WINDOW_MS 200   /* CPU load sample window */

static pthread_once_t init_once = PTHREAD_ONCE_INIT;
static int init_failed;

static void
silent_error(void *opaque, virErrorPtr e)
{
	(void)opaque;
	(void)e;
}

static void *
event_loop(void *arg)
{
	(void)arg;
	for (;;)
		if (virEventRunDefaultImpl() < 0)
			usleep(100 * 1000);
	return NULL;
}

static void
do_init(void)
{
	pthread_t t;
	pthread_attr_t a;

	virSetErrorFunc(NULL, silent_error);
	if (virInitialize() < 0 || virEventRegisterDefaultImpl() < 0) {
		init_failed = 1;
		return;
	}
	pthread_attr_init(&a);
	pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
	if (pthread_create(&t, &a, event_loop, NULL) != 0)
		init_failed = 1;
	pthread_attr_destroy(&a);
}

int
vdi_virt_init(struct vdi_err *err)
{
	pthread_once(&init_once, do_init);
	if (init_failed)
		return vdi_err_set(err, VDI_R_FAIL, "cannot initialise libvirt");
	return 0;
}

int
vdi_virt_fail_saved(enum vdi_reason why, const char *what, const virError *e, struct vdi_err *err)
{
	const char *m = e && e->message ? e->message : NULL;
	char *p;

	if (!m || !*m)
		m = e ? "libvirt gave no reason" : "unknown libvirt error";
	vdi_err_set(err, why, "%s: %s", what, m);
	/* One line: QEMU's messages come through libvirt with their newlines. */
	for (p = err->msg; *p; p++)
		if (*p == '\n' || *p == '\r')
			*p = p[1] ? '|' : '\0';
	return -1;
}

int
vdi_virt_fail(enum vdi_reason why, const char *what, struct vdi_err *err)
{
	return vdi_virt_fail_saved(why, what, virGetLastError(), err);
}

static int64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Fail every credential request: these programs never prompt. */
static int
no_auth(virConnectCredentialPtr cred, unsigned int ncred, void *cbdata)
{
	(void)cred;
	(void)ncred;
	(void)cbdata;
	return -1;
}

static virConnectPtr
open_now(const char *uri, struct vdi_err *err)
{
	static int credtypes[] = { VIR_CRED_AUTHNAME, VIR_CRED_PASSPHRASE };
	virConnectAuth auth = { credtypes, 2, no_auth, NULL };
	virConnectPtr c;

	c = virConnectOpenAuth(uri, &auth, 0);
	if (!c) {
		vdi_virt_fail(VDI_R_HOST_DOWN, "cannot connect", err);
		return NULL;
	}
	/* -1: not supported by this transport; 1: no event loop.  Either way go on. */
	virConnectSetKeepAlive(c, KEEPALIVE_INTERVAL, KEEPALIVE_COUNT);
	return c;
}

/* ---- jobs with deadlines ---- */

static pthread_mutex_t jobs_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t jobs_cv;
static pthread_once_t cv_once = PTHREAD_ONCE_INIT;

static void
cv_init(void)
{
	pthread_condattr_t a;

	pthread_condattr_init(&a);
	pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
	pthread_cond_init(&jobs_cv, &a);
	pthread_condattr_destroy(&a);
}

enum job_kind { JOB_CONNECT, JOB_PROBE };

struct job {
	enum job_kind kind;
	int refs;        /* the worker and the waiter; under jobs_mu */
	bool done;
	char *uri;
	char *pool;
	bool domains, load, networks;
	int64_t deadline;
	virConnectPtr conn;           /* JOB_CONNECT result */
	struct vdi_node_report rep;   /* JOB_PROBE result; rep.err for both */
	pthread_t thread;             /* joined when done in time, detached when given up */
};

static void
job_free(struct job *j)
{
	if (j->conn)
		virConnectClose(j->conn);
	vdi_node_report_clear(&j->rep);
	free(j->uri);
	free(j->pool);
	free(j);
}

/*
 * The waiter lets go of a job: joins its thread if it is done (it only has
 * to return), else detaches it to finish on its own.  Caller holds jobs_mu.
 */
static void job_unref_locked(struct job *j);

static void
job_release_locked(struct job *j)
{
	pthread_t t = j->thread;
	bool done = j->done;

	job_unref_locked(j);
	if (done) {
		pthread_mutex_unlock(&jobs_mu);
		pthread_join(t, NULL);
		pthread_mutex_lock(&jobs_mu);
	} else {
		pthread_detach(t);
	}
}

/* Drop one reference; the last one frees. Caller holds jobs_mu. */
static void
job_unref_locked(struct job *j)
{
	if (--j->refs == 0)
		job_free(j);
}

static void probe(struct job *j);

static void *
job_run(void *arg)
{
	struct job *j = arg;

	if (j->kind == JOB_CONNECT)
		j->conn = open_now(j->uri, &j->rep.err);
	else
		probe(j);
	pthread_mutex_lock(&jobs_mu);
	j->done = true;
	pthread_cond_broadcast(&jobs_cv);
	job_unref_locked(j);
	pthread_mutex_unlock(&jobs_mu);
	return NULL;
}

/* Start a job: the worker gets one reference, the caller keeps the other. */
static struct job *
job_start(enum job_kind kind, const char *uri, const struct vdi_probe_req *req,
	  int64_t timeout_ms, struct vdi_err *err)
{
	struct job *j;
	int rc;

	pthread_once(&cv_once, cv_init);
	j = vdi_xcalloc(1, sizeof(*j));
	j->uri = vdi_xstrdup(uri);
	j->pool = req ? vdi_xstrdup(req->pool) : NULL;
	j->kind = kind;
	if (req) {
		j->domains = req->domains;
		j->load = req->load;
		j->networks = req->networks;
	}
	j->refs = 2;
	j->deadline = now_ms() + timeout_ms;
	/*
	 * Joinable: a job done in time is joined, so no thread of ours is still
	 * exiting when the process does; one given up on is detached.
	 */
	rc = pthread_create(&j->thread, NULL, job_run, j);
	if (rc != 0) {
		job_free(j);
		vdi_err_set(err, VDI_R_FAIL, "cannot start a thread: %s", strerror(rc));
		return NULL;
	}
	return j;
}

static void
wait_until(int64_t deadline)
{
	struct timespec ts;

	ts.tv_sec = deadline / 1000;
	ts.tv_nsec = (deadline % 1000) * 1000000;
	pthread_cond_timedwait(&jobs_cv, &jobs_mu, &ts);
}

virConnectPtr
vdi_virt_connect(const char *uri, int64_t timeout_ms, struct vdi_err *err)
{
	struct job *j;
	virConnectPtr c = NULL;

	if (vdi_virt_init(err) < 0)
		return NULL;
	j = job_start(JOB_CONNECT, uri, NULL, timeout_ms, err);
	if (!j)
		return NULL;
	pthread_mutex_lock(&jobs_mu);
	while (!j->done && now_ms() < j->deadline)
		wait_until(j->deadline);
	if (j->done) {
		c = j->conn;
		j->conn = NULL;
		if (!c)
			vdi_err_copy(err, &j->rep.err);
	} else {
		vdi_err_set(err, VDI_R_HOST_DOWN, "cannot connect: no answer within %.1f s",
			    (double)timeout_ms / 1000);
	}
	job_release_locked(j);
	pthread_mutex_unlock(&jobs_mu);
	return c;
}

/* ---- probing ---- */

static const char *
state_name(int s)
{
	switch (s) {
	case VIR_DOMAIN_RUNNING: return "running";
	case VIR_DOMAIN_BLOCKED: return "blocked";
	case VIR_DOMAIN_PAUSED: return "paused";
	case VIR_DOMAIN_SHUTDOWN: return "shutdown";
	case VIR_DOMAIN_SHUTOFF: return "shutoff";
	case VIR_DOMAIN_CRASHED: return "crashed";
	case VIR_DOMAIN_PMSUSPENDED: return "pmsuspended";
	default: return "nostate";
	}
}

/* Busy and total nanoseconds of all CPUs so far. */
static int
cpu_times(virConnectPtr c, unsigned long long *busy, unsigned long long *total)
{
	virNodeCPUStatsPtr p = NULL;
	int n = 0, i, ret = -1;

	if (virNodeGetCPUStats(c, VIR_NODE_CPU_STATS_ALL_CPUS, NULL, &n, 0) < 0 || n <= 0)
		return -1;
	p = vdi_xcalloc((size_t)n, sizeof(*p));
	if (virNodeGetCPUStats(c, VIR_NODE_CPU_STATS_ALL_CPUS, p, &n, 0) < 0)
		goto out;
	*busy = *total = 0;
	for (i = 0; i < n; i++) {
		*total += p[i].value;
		if (strcmp(p[i].field, VIR_NODE_CPU_STATS_IDLE) != 0 &&
		    strcmp(p[i].field, VIR_NODE_CPU_STATS_IOWAIT) != 0)
			*busy += p[i].value;
	}
	ret = 0;
out:
	free(p);
	return ret;
}

static int address_from(virDomainPtr d, unsigned int src, char *buf, size_t len);

static int
list_domains(virConnectPtr c, struct vdi_node_report *r)
{
	virDomainPtr *doms = NULL;
	int n, i;

	n = virConnectListAllDomains(c, &doms, VIR_CONNECT_LIST_DOMAINS_ACTIVE);
	if (n < 0)
		return vdi_virt_fail(VDI_R_TEMP, "listing domains", &r->err);
	r->doms = vdi_xcalloc((size_t)n + 1, sizeof(*r->doms));
	for (i = 0; i < n; i++) {
		struct vdi_domain_info *d = &r->doms[r->ndoms];
		char uuid[VIR_UUID_STRING_BUFLEN];
		virDomainInfo info;
		int st = 0, reason = 0;
		char *md;

		/* A domain that went away while we looked is simply not listed. */
		if (virDomainGetUUIDString(doms[i], uuid) < 0 ||
		    virDomainGetState(doms[i], &st, &reason, 0) < 0 ||
		    virDomainGetInfo(doms[i], &info) < 0)
			continue;
		d->name = vdi_xstrdup(virDomainGetName(doms[i]));
		d->uuid = vdi_xstrdup(uuid);
		d->state = state_name(st);
		d->vcpus = info.nrVirtCpu;
		d->mem = (int64_t)info.memory * 1024;
		md = virDomainGetMetadata(doms[i], VIR_DOMAIN_METADATA_ELEMENT, VDI_XMLNS, 0);
		if (md) {
			struct vdi_meta m;
			struct vdi_err e;
			if (vdi_meta_parse(md, &m, &e) == 0) {
				char addr[64];
				d->ours = true;
				d->session_id = m.session_id;
				d->uservm_id = m.uservm_id;
				d->user = m.user;
				m.user = NULL;
				/* Its lease, from the host's own dnsmasq: no agent, one call. */
				if (address_from(doms[i], VIR_DOMAIN_INTERFACE_ADDRESSES_SRC_LEASE, addr, sizeof(addr)) == 1)
					d->address = vdi_xstrdup(addr);
			}
			vdi_meta_clear(&m);
			free(md);
		}
		r->ndoms++;
	}
	for (i = 0; i < n; i++)
		virDomainFree(doms[i]);
	free(doms);
	return 0;
}

static void
probe(struct job *j)
{
	struct vdi_node_report *r = &j->rep;
	int64_t t0 = now_ms();
	virConnectPtr c;
	virNodeInfo ni;
	unsigned long long b0, t0n, b1, t1n, fm;

	c = open_now(j->uri, &r->err);
	if (!c)
		goto out;
	if (virNodeGetInfo(c, &ni) < 0) {
		vdi_virt_fail(VDI_R_TEMP, "reading node info", &r->err);
		goto out;
	}
	r->vcpus = ni.cpus;
	r->mem_total = (int64_t)ni.memory * 1024;
	fm = virNodeGetFreeMemory(c);
	r->mem_free = (int64_t)fm;
	if (j->pool) {
		virStoragePoolPtr p = virStoragePoolLookupByName(c, j->pool);
		int active = p ? virStoragePoolIsActive(p) : -1;
		if (p)
			virStoragePoolFree(p);
		if (active != 1) {
			vdi_err_set(&r->err, VDI_R_NOTFOUND, "storage pool '%s' %s", j->pool,
				    active == 0 ? "is not active" : "not found");
			goto out;
		}
	}
	if (j->networks) {
		virNetworkPtr net = virNetworkLookupByName(c, "default");
		r->default_network = net && virNetworkIsActive(net) == 1;
		if (net)
			virNetworkFree(net);
	}
	if (j->load && cpu_times(c, &b0, &t0n) == 0) {
		usleep(LOAD_WINDOW_MS * 1000);
		if (cpu_times(c, &b1, &t1n) == 0 && t1n > t0n) {
			r->load = (double)(b1 - b0) / (double)(t1n - t0n);
			r->load_known = true;
		}
	}
	if (j->domains && list_domains(c, r) < 0)
		goto out;
out:
	r->elapsed_ms = now_ms() - t0;
	if (c)
		virConnectClose(c);
}

void
vdi_virt_probe_many(const struct vdi_probe_req *reqs, size_t n, int64_t timeout_ms,
		    int parallel, struct vdi_node_report *out)
{
	struct job **jobs;
	size_t next = 0, left = n, i;
	int running = 0;

	memset(out, 0, n * sizeof(*out));
	if (n == 0)
		return;
	if (vdi_virt_init(&out[0].err) < 0) {
		for (i = 1; i < n; i++)
			out[i].err = out[0].err;
		return;
	}
	jobs = vdi_xcalloc(n, sizeof(*jobs));
	if (parallel < 1)
		parallel = 1;
	pthread_mutex_lock(&jobs_mu);
	while (left > 0) {
		int64_t now, wake;

		/* Start jobs while there is room. */
		while (next < n && running < parallel) {
			struct job *j;
			pthread_mutex_unlock(&jobs_mu);
			j = job_start(JOB_PROBE, reqs[next].uri, &reqs[next], timeout_ms, &out[next].err);
			if (j) {
				pthread_mutex_lock(&jobs_mu);
				jobs[next] = j;
				running++;
			} else {
				pthread_mutex_lock(&jobs_mu);
				left--;
			}
			next++;
		}
		/* Collect finished and overdue jobs. */
		now = now_ms();
		wake = now + 1000;
		for (i = 0; i < next; i++) {
			struct job *j = jobs[i];
			if (!j)
				continue;
			if (j->done) {
				out[i] = j->rep;
				memset(&j->rep, 0, sizeof(j->rep));
			} else if (now >= j->deadline) {
				vdi_err_set(&out[i].err, VDI_R_HOST_DOWN, "no answer within %.1f s",
					    (double)timeout_ms / 1000);
				out[i].elapsed_ms = timeout_ms;
			} else {
				if (j->deadline < wake)
					wake = j->deadline;
				continue;
			}
			jobs[i] = NULL;
			running--;
			left--;
			job_release_locked(j);
		}
		if (left > 0 && (running >= parallel || next == n))
			wait_until(wake);
	}
	pthread_mutex_unlock(&jobs_mu);
	free(jobs);
}

/* ---- storage ---- */

static virStoragePoolPtr
pool_get(virConnectPtr c, const char *pool, struct vdi_err *err)
{
	virStoragePoolPtr p = virStoragePoolLookupByName(c, pool);

	if (!p) {
		virErrorPtr e = virGetLastError();
		if (e && e->code == VIR_ERR_NO_STORAGE_POOL)
			vdi_err_set(err, VDI_R_NOTFOUND, "storage pool '%s' not found", pool);
		else
			vdi_virt_fail(VDI_R_FAIL, "looking up storage pool", err);
	}
	return p;
}

/* The volume, or NULL: with err code 3 when it does not exist. */
static virStorageVolPtr
vol_get(virConnectPtr c, const char *pool, const char *name, struct vdi_err *err)
{
	virStoragePoolPtr p = pool_get(c, pool, err);
	virStorageVolPtr v;

	if (!p)
		return NULL;
	v = virStorageVolLookupByName(p, name);
	if (!v) {
		virErrorPtr e = virGetLastError();
		if (e && e->code == VIR_ERR_NO_STORAGE_VOL)
			vdi_err_set(err, VDI_R_NOTFOUND, "volume '%s' not found in pool '%s'", name, pool);
		else
			vdi_virt_fail(VDI_R_FAIL, "looking up volume", err);
	}
	virStoragePoolFree(p);
	return v;
}

int
vdi_pool_refresh(virConnectPtr c, const char *pool, struct vdi_err *err)
{
	virStoragePoolPtr p = pool_get(c, pool, err);
	int rc;

	if (!p)
		return -1;
	rc = virStoragePoolRefresh(p, 0);
	if (rc < 0)
		vdi_virt_fail(VDI_R_FAIL, "refreshing storage pool", err);
	virStoragePoolFree(p);
	return rc < 0 ? -1 : 0;
}

char *
vdi_vol_path(virConnectPtr c, const char *pool, const char *name, struct vdi_err *err)
{
	virStorageVolPtr v = vol_get(c, pool, name, err);
	char *path;

	if (!v)
		return NULL;
	path = virStorageVolGetPath(v);
	if (!path)
		vdi_virt_fail(VDI_R_FAIL, "reading volume path", err);
	virStorageVolFree(v);
	return path;
}

int
vdi_vol_info(virConnectPtr c, const char *pool, const char *name, int64_t *capacity,
	     int64_t *allocation, struct vdi_err *err)
{
	virStorageVolPtr v = vol_get(c, pool, name, err);
	virStorageVolInfo info;
	int rc;

	if (!v)
		return -1;
	rc = virStorageVolGetInfo(v, &info);
	if (rc < 0)
		vdi_virt_fail(VDI_R_FAIL, "reading volume", err);
	virStorageVolFree(v);
	if (rc < 0)
		return -1;
	*capacity = (int64_t)info.capacity;
	*allocation = (int64_t)info.allocation;
	return 0;
}

int
vdi_vol_resize(virConnectPtr c, const char *pool, const char *name, int64_t capacity, struct vdi_err *err)
{
	virStorageVolPtr v = vol_get(c, pool, name, err);
	int rc;

	if (!v)
		return -1;
	rc = virStorageVolResize(v, (unsigned long long)capacity, 0);
	if (rc < 0)
		vdi_virt_fail(VDI_R_FAIL, "growing volume", err);
	virStorageVolFree(v);
	return rc < 0 ? -1 : 0;
}

int
vdi_vol_delete(virConnectPtr c, const char *pool, const char *name, struct vdi_err *err)
{
	struct vdi_err e = { 0 };
	virStorageVolPtr v = vol_get(c, pool, name, &e);
	virErrorPtr saved = NULL;
	int rc;

	if (!v) {
		if (e.code == VDI_ENOTFOUND)
			return 0;
		return vdi_err_copy(err, &e);
	}
	rc = virStorageVolDelete(v, 0);
	/* Save the reason before virStorageVolFree() resets libvirt's last error. */
	if (rc < 0)
		saved = virSaveLastError();
	virStorageVolFree(v);
	if (rc < 0) {
		/* Deleted meanwhile by someone else: what we wanted. */
		if (saved && saved->code == VIR_ERR_NO_STORAGE_VOL)
			rc = 0;
		else
			vdi_virt_fail_saved(VDI_R_FAIL, "deleting volume", saved, err);
		virFreeError(saved);
		return rc < 0 ? -1 : 0;
	}
	return 1;
}

int
vdi_vol_delete_unlisted(virConnectPtr c, const char *pool, const char *name, struct vdi_err *err)
{
	int rc = vdi_vol_delete(c, pool, name, err);

	if (rc != 0)
		return rc;
	/* Not listed: the pool's view may predate the file (libvirt wrote it outside the storage API). */
	if (vdi_pool_refresh(c, pool, err) < 0)
		return -1;
	return vdi_vol_delete(c, pool, name, err);
}

static virStorageVolPtr
vol_create(virConnectPtr c, const char *pool, const struct vdi_volume_spec *spec, struct vdi_err *err)
{
	virStoragePoolPtr p;
	virStorageVolPtr v = NULL;
	char *xml;

	xml = vdi_xml_volume(spec, err);
	if (!xml)
		return NULL;
	p = pool_get(c, pool, err);
	if (p) {
		v = virStorageVolCreateXML(p, xml, 0);
		if (!v) {
			virErrorPtr e = virGetLastError();
			if (e && e->code == VIR_ERR_STORAGE_VOL_EXIST)
				vdi_err_set(err, VDI_R_CONFLICT, "volume '%s' exists already in pool '%s'",
					    spec->name, pool);
			else if (e && e->code == VIR_ERR_OPERATION_INVALID && e->message &&
				 strstr(e->message, "already exists"))
				/* A file the pool's view does not list yet: libvirt leaves it alone, and so do we. */
				vdi_err_set(err, VDI_R_CONFLICT, "a file '%s' is in pool '%s' already", spec->name, pool);
			else
				vdi_virt_fail(VDI_R_FAIL, "creating volume", err);
		}
		virStoragePoolFree(p);
	}
	free(xml);
	return v;
}

int
vdi_vol_create(virConnectPtr c, const char *pool, const struct vdi_volume_spec *spec, struct vdi_err *err)
{
	virStorageVolPtr v = vol_create(c, pool, spec, err);

	if (!v)
		return -1;
	virStorageVolFree(v);
	return 0;
}

char **
vdi_pool_volumes(virConnectPtr c, const char *pool, struct vdi_err *err)
{
	virStoragePoolPtr p;
	virStorageVolPtr *vols = NULL;
	char **names;
	int n;

	if (vdi_pool_refresh(c, pool, err) < 0 || !(p = pool_get(c, pool, err)))
		return NULL;
	n = virStoragePoolListAllVolumes(p, &vols, 0);
	if (n < 0)
		vdi_virt_fail(VDI_R_FAIL, "listing volumes", err);
	virStoragePoolFree(p);
	if (n < 0)
		return NULL;
	names = vdi_xcalloc((size_t)n + 1, sizeof(*names));
	for (int i = 0; i < n; i++) {
		names[i] = vdi_xstrdup(virStorageVolGetName(vols[i]));
		virStorageVolFree(vols[i]);
	}
	free(vols);
	return names;
}

struct vdi_upload {
	virStorageVolPtr vol;
	virStreamPtr st;
};

struct vdi_upload *
vdi_upload_begin(virConnectPtr c, const char *pool, const struct vdi_volume_spec *spec, struct vdi_err *err)
{
	struct vdi_upload *u = vdi_xcalloc(1, sizeof(*u));

	u->vol = vol_create(c, pool, spec, err);
	if (!u->vol)
		goto fail;
	u->st = virStreamNew(c, 0);
	if (!u->st || virStorageVolUpload(u->vol, u->st, 0, 0, 0) < 0) {
		vdi_virt_fail(VDI_R_FAIL, "starting upload", err);
		goto fail;
	}
	return u;
fail:
	vdi_upload_abort(u);
	return NULL;
}

struct vdi_upload *
vdi_upload_over(virConnectPtr c, const char *pool, const char *name, int64_t len, struct vdi_err *err)
{
	struct vdi_upload *u = vdi_xcalloc(1, sizeof(*u));
	virStorageVolInfo info;

	u->vol = vol_get(c, pool, name, err);
	if (!u->vol)
		goto fail;
	if (virStorageVolGetInfo(u->vol, &info) < 0) {
		vdi_virt_fail(VDI_R_FAIL, "reading volume", err);
		goto fail;
	}
	if ((int64_t)info.capacity != len) {
		vdi_err_set(err, VDI_R_CONFLICT, "volume '%s' is %llu bytes, not %lld", name,
			    (unsigned long long)info.capacity, (long long)len);
		goto fail;
	}
	u->st = virStreamNew(c, 0);
	if (!u->st || virStorageVolUpload(u->vol, u->st, 0, (unsigned long long)len, 0) < 0) {
		vdi_virt_fail(VDI_R_FAIL, "starting upload", err);
		goto fail;
	}
	return u;
fail:
	/* Not vdi_upload_abort: the volume was there before, and is not ours to delete here. */
	if (u->st)
		virStreamFree(u->st);
	if (u->vol)
		virStorageVolFree(u->vol);
	free(u);
	return NULL;
}

int
vdi_upload_send(struct vdi_upload *u, const void *buf, size_t len, struct vdi_err *err)
{
	const char *p = buf;

	while (len > 0) {
		int n = virStreamSend(u->st, p, len > (1 << 20) ? (1 << 20) : len);
		if (n < 0)
			return vdi_virt_fail(VDI_R_FAIL, "uploading", err);
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int
vdi_upload_finish(struct vdi_upload *u, struct vdi_err *err)
{
	if (virStreamFinish(u->st) < 0) {
		vdi_virt_fail(VDI_R_FAIL, "finishing upload", err);
		vdi_upload_abort(u);
		return -1;
	}
	virStreamFree(u->st);
	virStorageVolFree(u->vol);
	free(u);
	return 0;
}

void
vdi_upload_abort(struct vdi_upload *u)
{
	if (!u)
		return;
	if (u->st) {
		virStreamAbort(u->st);
		virStreamFree(u->st);
	}
	if (u->vol) {
		virStorageVolDelete(u->vol, 0);
		virStorageVolFree(u->vol);
	}
	free(u);
}

/* ---- domains ---- */

const char *
vdi_domain_type(virConnectPtr c, const char *want)
{
	char *caps, *kvm = NULL;
	struct vdi_err e = { 0 };

	if (want && strcmp(want, "auto") != 0)
		return strcmp(want, "kvm") == 0 ? "kvm" : "qemu";
	caps = virConnectGetCapabilities(c);

	if (caps)
		kvm = vdi_xml_xpath_string(caps, "/capabilities/guest[arch/@name='x86_64']/arch/domain[@type='kvm']/@type", &e);
	free(caps);
	free(kvm);
	return kvm ? "kvm" : "qemu";
}

static int
port_of(virDomainPtr d, struct vdi_ports *port, struct vdi_err *err)
{
	char *xml = virDomainGetXMLDesc(d, 0);
	int ret;

	if (!xml)
		return vdi_virt_fail(VDI_R_FAIL, "reading domain", err);
	ret = vdi_xml_domain_ports(xml, port, err);
	free(xml);
	return ret;
}

int
vdi_domain_start(virConnectPtr c, const char *xml, struct vdi_ports *port, struct vdi_err *err)
{
	virDomainPtr d = virDomainCreateXML(c, xml, 0);
	int ret;

	if (!d)
		return vdi_virt_fail(VDI_R_FAIL, "starting domain", err);
	ret = port_of(d, port, err);
	virDomainFree(d);
	return ret;
}

int
vdi_domain_save(virConnectPtr c, const char *name, const char *path, struct vdi_err *err)
{
	virDomainPtr d = virDomainLookupByName(c, name);
	int rc;

	if (!d)
		return vdi_virt_fail(VDI_R_NOTFOUND, "looking up domain", err);
	/* RUNNING: a restore resumes it at once, with no resume call to forget. */
	rc = virDomainSaveFlags(d, path, NULL, VIR_DOMAIN_SAVE_RUNNING);
	if (rc < 0)
		vdi_virt_fail(VDI_R_FAIL, "saving domain", err);
	virDomainFree(d);
	return rc < 0 ? -1 : 0;
}

int
vdi_domain_restore(virConnectPtr c, const char *path, const char *name, const struct vdi_xml_edit *e,
		   struct vdi_ports *port, struct vdi_err *err)
{
	char *saved = NULL, *xml = NULL, *was = NULL;
	virDomainPtr d = NULL;
	int ret = -1;

	/* SECURE: the saved XML with its passwords, which e replaces. */
	if (!(saved = virDomainSaveImageGetXMLDesc(c, path, VIR_DOMAIN_SAVE_IMAGE_XML_SECURE))) {
		vdi_virt_fail(VDI_R_FAIL, "reading the warm image", err);
		goto out;
	}
	was = vdi_xml_xpath_string(saved, "/domain/name", err);
	if (!was || strcmp(was, name) != 0) {
		vdi_err_set(err, VDI_R_FAIL, "the warm image %s holds domain %s, not %s", path, was ? was : "?", name);
		goto out;
	}
	if (!(xml = vdi_xml_domain_edit(saved, e, err)))
		goto out;
	if (virDomainRestoreFlags(c, path, xml, VIR_DOMAIN_SAVE_RUNNING) < 0) {
		vdi_virt_fail(VDI_R_FAIL, "restoring the warm image", err);
		goto out;
	}
	if (!(d = virDomainLookupByName(c, name))) {
		vdi_virt_fail(VDI_R_FAIL, "looking up the restored domain", err);
		goto out;
	}
	ret = port_of(d, port, err);
out:
	if (d)
		virDomainFree(d);
	if (saved)
		explicit_bzero(saved, strlen(saved));
	if (xml)
		explicit_bzero(xml, strlen(xml));
	free(saved);
	free(xml);
	free(was);
	return ret;
}

int
vdi_domain_port(virConnectPtr c, const char *name, int64_t session, struct vdi_ports *port, struct vdi_err *err)
{
	virDomainPtr d = virDomainLookupByName(c, name);
	struct vdi_meta m = { 0 };
	struct vdi_err e = { 0 };
	char *md;
	int ret = -1;

	if (!d)
		return vdi_err_set(err, VDI_R_NOTFOUND, "no domain %s", name);
	if (virDomainIsActive(d) != 1) {
		vdi_err_set(err, VDI_R_NOTFOUND, "domain %s is not running", name);
		goto out;
	}
	md = virDomainGetMetadata(d, VIR_DOMAIN_METADATA_ELEMENT, VDI_XMLNS, 0);
	if (!md || vdi_meta_parse(md, &m, &e) < 0 || m.session_id != session) {
		vdi_err_set(err, VDI_R_CONFLICT, "a domain named %s runs that is not session %lld's", name,
			    (long long)session);
		free(md);
		goto out;
	}
	free(md);
	ret = port_of(d, port, err);
out:
	vdi_meta_clear(&m);
	virDomainFree(d);
	return ret;
}

int
vdi_domain_destroy(virConnectPtr c, const char *name, struct vdi_err *err)
{
	virDomainPtr d = virDomainLookupByName(c, name);
	virErrorPtr saved = NULL;
	int rc;

	if (!d) {
		virErrorPtr e = virGetLastError();
		if (e && e->code == VIR_ERR_NO_DOMAIN)
			return 0;
		return vdi_virt_fail(VDI_R_TEMP, "looking up domain", err);
	}
	rc = virDomainDestroy(d);
	/* Save the reason before virDomainFree() resets libvirt's last error. */
	if (rc < 0)
		saved = virSaveLastError();
	virDomainFree(d);
	if (rc < 0) {
		/* Gone, or stopped, meanwhile: what we wanted. */
		if (saved && (saved->code == VIR_ERR_NO_DOMAIN || saved->code == VIR_ERR_OPERATION_INVALID))
			rc = 0;
		else
			vdi_virt_fail_saved(VDI_R_FAIL, "destroying domain", saved, err);
		virFreeError(saved);
		return rc < 0 ? -1 : 0;
	}
	return 1;
}

int
vdi_domain_alive(virConnectPtr c, const char *name, struct vdi_err *err)
{
	virDomainPtr d = virDomainLookupByName(c, name);
	int r;

	if (!d) {
		if (virGetLastErrorCode() == VIR_ERR_NO_DOMAIN)
			return 0;
		return vdi_virt_fail(VDI_R_FAIL, "looking up a domain", err);
	}
	r = virDomainIsActive(d);
	if (r < 0)
		vdi_virt_fail(VDI_R_FAIL, "reading a domain's state", err);
	virDomainFree(d);
	return r < 0 ? -1 : r == 1;
}

/* libvirt's reason for a pause that no one asked for, or NULL when someone did. */
static const char *
paused_why(int reason)
{
	switch (reason) {
	case VIR_DOMAIN_PAUSED_IOERROR: return "paused: I/O error on a disk (full or failing storage)";
	case VIR_DOMAIN_PAUSED_WATCHDOG: return "paused: the watchdog fired";
	case VIR_DOMAIN_PAUSED_CRASHED: return "paused: the guest crashed (panic)";
	case VIR_DOMAIN_PAUSED_POSTCOPY_FAILED: return "paused: a post-copy migration failed";
	case VIR_DOMAIN_PAUSED_UNKNOWN:
		return "paused by QEMU, reason unknown to libvirt (an emulation or internal error?)";
	default: return NULL; /* an admin, a migration, a save, a snapshot, starting up */
	}
}

int
vdi_domain_stuck(virConnectPtr c, const char *name, char *why, size_t len, struct vdi_err *err)
{
	virDomainPtr d = virDomainLookupByName(c, name);
	const char *w = NULL;
	int state, reason, ret = -1;

	why[0] = '\0';
	if (!d) {
		if (virGetLastErrorCode() == VIR_ERR_NO_DOMAIN)
			return 0;
		return vdi_virt_fail(VDI_R_FAIL, "looking up a domain", err);
	}
	if (virDomainGetState(d, &state, &reason, 0) < 0) {
		vdi_virt_fail(VDI_R_FAIL, "reading a domain's state", err);
		goto out;
	}
	if (state == VIR_DOMAIN_PAUSED)
		w = paused_why(reason);
	else if (state == VIR_DOMAIN_CRASHED)
		w = reason == VIR_DOMAIN_CRASHED_PANICKED ? "crashed: the guest panicked" : "crashed";
	else if (state == VIR_DOMAIN_PMSUSPENDED)
		w = "suspended by the guest (ACPI sleep)";
	if (w)
		snprintf(why, len, "%s", w);
	ret = w != NULL;
out:
	virDomainFree(d);
	return ret;
}

/* The first IPv4 address libvirt knows for d from source src: 1 found, 0 none, -1 error. */
static int
address_from(virDomainPtr d, unsigned int src, char *buf, size_t len)
{
	virDomainInterfacePtr *ifs = NULL;
	int n = virDomainInterfaceAddresses(d, &ifs, src, 0), found = 0;

	for (int i = 0; i < n; i++) {
		for (unsigned int k = 0; !found && k < ifs[i]->naddrs; k++) {
			if (ifs[i]->addrs[k].type == VIR_IP_ADDR_TYPE_IPV4 && ifs[i]->addrs[k].addr) {
				snprintf(buf, len, "%s", ifs[i]->addrs[k].addr);
				found = 1;
			}
		}
		virDomainInterfaceFree(ifs[i]);
	}
	free(ifs);
	return n < 0 ? -1 : found;
}

int
vdi_domain_address(virConnectPtr c, const char *name, char *buf, size_t len, struct vdi_err *err)
{
	virDomainPtr d = virDomainLookupByName(c, name);
	int r;

	if (!d)
		return vdi_virt_fail(virGetLastErrorCode() == VIR_ERR_NO_DOMAIN ? VDI_R_NOTFOUND : VDI_R_FAIL,
				     "looking up a domain", err);
	/*
	 * The DHCP lease of a libvirt network, else the host's ARP table (a
	 * bridge): no agent in the guest.  Only when both sources fail is it
	 * an error (libvirt 9.0 cannot read the ARP table of some kernels).
	 */
	r = address_from(d, VIR_DOMAIN_INTERFACE_ADDRESSES_SRC_LEASE, buf, len);
	if (r != 1) {
		int lease = r;
		r = address_from(d, VIR_DOMAIN_INTERFACE_ADDRESSES_SRC_ARP, buf, len);
		if (r < 0 && lease == 0)
			r = 0;
	}
	if (r < 0)
		vdi_virt_fail(VDI_R_FAIL, "reading the domain's addresses", err);
	virDomainFree(d);
	return r;
}

/* A JSON member as text: a string as it is, a number as JSON writes it; NULL if absent. */
static const char *
json_member(struct json_object *o, const char *key)
{
	struct json_object *v;

	if (!json_object_object_get_ex(o, key, &v))
		return NULL;
	if (!json_object_is_type(v, json_type_string) && !json_object_is_type(v, json_type_int))
		return NULL;
	return json_object_get_string(v);
}

char **
vdi_domain_clients(virDomainPtr dom, struct vdi_err *err)
{
	struct json_object *top = NULL, *ret, *chans;
	char *res = NULL, **keys = NULL;
	size_t n = 0;

	if (virDomainQemuMonitorCommand(dom, "{\"execute\":\"query-spice\"}", &res, 0) < 0) {
		vdi_virt_fail(VDI_R_FAIL, "query-spice", err);
		return NULL;
	}
	/* {"return": {..., "channels": [{"host": "127.0.0.1", "port": "51374", ...}, ...]}} */
	top = json_tokener_parse(res);
	if (!top || !json_object_object_get_ex(top, "return", &ret)) {
		vdi_err_set(err, VDI_R_FAIL, "query-spice: QEMU's answer is not what QMP documents");
		goto out;
	}
	if (json_object_object_get_ex(ret, "channels", &chans) && json_object_is_type(chans, json_type_array)) {
		for (size_t i = 0; i < json_object_array_length(chans); i++) {
			struct json_object *ch = json_object_array_get_idx(chans, i);
			const char *host = json_member(ch, "host"), *port = json_member(ch, "port");
			char *k;

			if (!host || !port)
				continue;
			if (asprintf(&k, "%s %s", host, port) < 0)
				vdi_oom();
			if (!vdi_strv_has(keys, n, k))
				vdi_strv_push(&keys, &n, k);
			else
				free(k);
		}
	}
	vdi_strv_push(&keys, &n, NULL);
out:
	json_object_put(top);
	free(res);
	return keys;
}
