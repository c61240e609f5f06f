/* connect.c - a user's own way to their desktop (see connect.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libxml/parser.h>
#include <libxml/tree.h>

#include "connect.h"
#include "host.h"
#include "mem.h"
#include "request.h"
#include "uservm.h"
#include "virt.h"
#include "xml.h"

int
vdi_connect_status(struct vdi_db *db, const char *user, struct vdi_connect_status *st, struct vdi_err *err)
{
	struct vdi_uservm u;
	struct vdi_session s;
	struct vdi_request *r = NULL;
	size_t nr = 0;
	int ret = -1;

	memset(st, 0, sizeof(*st));
	if (vdi_uservm_get(db, user, &u, err) == 0) {
		st->desktop = vdi_xstrdup(u.state);
		st->master = vdi_xstrdup(u.master);
		st->mem = u.mem;
		st->vcpus = u.vcpus;
		st->disk = u.disk;
		{
			struct vdi_err e = { 0 };
			st->never_fits = vdi_host_fits_ever(db, u.pool, u.mem, u.vcpus, &e) < 0 &&
					 e.reason == VDI_R_NEVER_FITS;
		}
		vdi_uservm_clear(&u);
	} else if (err->code != VDI_ENOTFOUND) {
		goto out;
	} else {
		vdi_err_reset(err);
		if (vdi_request_list(db, "pending", user, &r, &nr, err) < 0)
			goto out;
		st->desktop = vdi_xstrdup(nr ? "requested" : "none");
		if (nr) {
			st->master = vdi_xstrdup(r[0].master);
			st->mem = r[0].mem;
			st->vcpus = r[0].vcpus;
			st->disk = r[0].disk;
			st->requested = r[0].created;
		}
		ret = 0;
		goto out;
	}
	if (vdi_session_of_user(db, user, &s, err) == 0) {
		if (!vdi_session_is_prepare(&s)) {
			st->session = vdi_xstrdup(s.state);
			st->host = s.host ? vdi_xstrdup(s.host) : NULL;
			st->connected = vdi_session_connected(&s);
			st->since = st->connected ? s.connected_since : s.disconnected_since;
		}
		vdi_session_clear(&s);
	} else if (err->code != VDI_ENOTFOUND) {
		goto out;
	}
	vdi_err_reset(err);
	ret = 0;
out:
	vdi_requests_free(r, nr);
	if (ret < 0)
		vdi_connect_status_clear(st);
	return ret;
}

void
vdi_connect_status_clear(struct vdi_connect_status *st)
{
	free(st->desktop);
	free(st->master);
	free(st->session);
	free(st->host);
	memset(st, 0, sizeof(*st));
}

/* The live <graphics type='spice'> of dom with the new ticket, as XML for virDomainUpdateDeviceFlags. */
static char *
ticket_xml(virDomainPtr dom, const char *password, int64_t expires, struct vdi_err *err)
{
	char *live = virDomainGetXMLDesc(dom, 0), *out = NULL, until[32];
	xmlDocPtr doc = NULL;
	xmlNodePtr n = NULL, dev;
	xmlBufferPtr buf = NULL;
	struct tm tm;
	time_t t = (time_t)expires;

	if (!live) {
		vdi_virt_fail(VDI_R_FAIL, "reading the domain", err);
		goto out;
	}
	vdi_xml_init();
	doc = xmlReadMemory(live, (int)strlen(live), "domain.xml", NULL, XML_PARSE_NONET | XML_PARSE_NOBLANKS);
	for (dev = doc ? xmlDocGetRootElement(doc)->children : NULL; dev; dev = dev->next)
		if (dev->type == XML_ELEMENT_NODE && xmlStrEqual(dev->name, BAD_CAST "devices"))
			break;
	for (n = dev ? dev->children : NULL; n; n = n->next) {
		xmlChar *type;
		bool spice;
		if (n->type != XML_ELEMENT_NODE || !xmlStrEqual(n->name, BAD_CAST "graphics"))
			continue;
		type = xmlGetProp(n, BAD_CAST "type");
		spice = type && xmlStrEqual(type, BAD_CAST "spice");
		xmlFree(type);
		if (spice)
			break;
	}
	if (!n) {
		vdi_err_set(err, VDI_R_FAIL, "the domain has no SPICE display");
		goto out;
	}
	gmtime_r(&t, &tm);
	strftime(until, sizeof(until), "%Y-%m-%dT%H:%M:%S", &tm);
	xmlSetProp(n, BAD_CAST "passwd", BAD_CAST password);
	xmlSetProp(n, BAD_CAST "passwdValidTo", BAD_CAST until);
	xmlSetProp(n, BAD_CAST "connected", BAD_CAST "keep");
	buf = xmlBufferCreate();
	if (!buf || xmlNodeDump(buf, doc, n, 0, 0) < 0)
		vdi_oom();
	out = vdi_xstrdup((const char *)xmlBufferContent(buf));
out:
	if (buf)
		xmlBufferFree(buf);
	xmlFreeDoc(doc);
	free(live);
	return out;
}

/*
 * A fresh display password for session s's domain, valid until expires
 * (the hypervisor's clock), recorded in the VMDB; pw gets it.
 */
static int
ticket_set(struct vdi_db *db, virConnectPtr conn, const struct vdi_session *s, int64_t expires, char *pw,
	   size_t len, struct vdi_err *err)
{
	virDomainPtr dom = NULL;
	char *xml = NULL;
	int ret = -1;

	if (vdi_start_password(pw, len, err) < 0)
		goto out;
	if (!(dom = virDomainLookupByName(conn, s->domain))) {
		vdi_virt_fail(VDI_R_FAIL, "finding the desktop's domain", err);
		goto out;
	}
	if (!(xml = ticket_xml(dom, pw, expires, err)))
		goto out;
	if (virDomainUpdateDeviceFlags(dom, xml, VIR_DOMAIN_AFFECT_LIVE) < 0) {
		vdi_virt_fail(VDI_R_FAIL, "setting the display password", err);
		goto out;
	}
	ret = vdi_session_set_ticket(db, s->id, pw, expires, err);
out:
	if (xml) {
		explicit_bzero(xml, strlen(xml));
		free(xml);
	}
	if (dom)
		virDomainFree(dom);
	return ret;
}

int
vdi_connect_ticket(struct vdi_db *db, virConnectPtr conn, struct vdi_session *s, int64_t ttl,
		   struct vdi_err *err)
{
	char pw[21];
	int64_t expires = (int64_t)time(NULL) + ttl;
	int ret = -1;

	if (ticket_set(db, conn, s, expires, pw, sizeof(pw), err) < 0)
		goto out;
	if (s->display_password)
		explicit_bzero(s->display_password, strlen(s->display_password));
	free(s->display_password);
	s->display_password = vdi_xstrdup(pw);
	s->ticket_expires = expires;
	ret = 0;
out:
	explicit_bzero(pw, sizeof(pw));
	return ret;
}

int
vdi_connect_ticket_spend(struct vdi_db *db, virConnectPtr conn, const struct vdi_session *s, struct vdi_err *err)
{
	char pw[21];
	/* Expired already, by the hypervisor's clock (not the tests'). */
	int ret = ticket_set(db, conn, s, (int64_t)time(NULL) - 1, pw, sizeof(pw), err);

	explicit_bzero(pw, sizeof(pw));
	return ret;
}

int
vdi_connect(struct vdi_db *db, const char *user, const struct vdi_start_opts *o, int64_t ttl,
	    struct vdi_session *s, struct vdi_err *err)
{
	struct vdi_uservm u;
	virConnectPtr conn;
	int ret = -1;

	memset(s, 0, sizeof(*s));
	if (vdi_uservm_get(db, user, &u, err) < 0) {
		if (err->reason == VDI_R_NO_USER || err->reason == VDI_R_NOTFOUND)
			vdi_err_set(err, VDI_R_NO_USER, "you have no desktop yet");
		return -1;
	}
	if (strcmp(u.state, "creating") == 0 || strcmp(u.state, "preparing") == 0)
		ret = vdi_err_set(err, VDI_R_PREPARING, "your desktop is being prepared");
	else if (strcmp(u.state, "failed") == 0)
		ret = vdi_err_set(err, VDI_R_PREPARE_FAILED, "your desktop could not be prepared; "
				  "your administrator can make it again");
	else
		ret = vdi_host_fits_ever(db, u.pool, u.mem, u.vcpus, err);
	vdi_uservm_clear(&u);
	if (ret < 0)
		return -1;
	ret = -1;
	if (vdi_start(db, user, 0, o, s, err) < 0)
		return -1;
	if (!(conn = vdi_conns_get(o->conns, s->host, s->host_uri, err)) ||
	    vdi_connect_ticket(db, conn, s, ttl, err) < 0)
		goto out;
	ret = 0;
out:
	if (ret < 0)
		vdi_session_clear(s);
	return ret;
}
