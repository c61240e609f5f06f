/* xml.c - building and reading libvirt XML with libxml2 (see xml.h). */
#include <stdio.h>
#include <stdlib.h>
#include <pthread.h>
#include <string.h>
#include <stdbool.h>

#include <libxml/parser.h>
#include <libxml/tree.h>
#include <libxml/xpath.h>
#include <libxml/xpathInternals.h>

#include "meta.h"
#include "mem.h"
#include "xml.h"

static void
init_once(void)
{
	xmlInitParser();
}

void
vdi_xml_init(void)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;

	pthread_once(&once, init_once);
}

/* Serialise doc's root element into a new string. */
static char *
dump(xmlDocPtr doc, struct vdi_err *err)
{
	xmlBufferPtr buf = xmlBufferCreate();
	char *s = NULL;

	if (buf && xmlNodeDump(buf, doc, xmlDocGetRootElement(doc), 0, 1) >= 0)
		s = vdi_xstrdup((const char *)xmlBufferContent(buf));
	if (!s)
		vdi_err_set(err, VDI_R_FAIL, "cannot format XML");
	if (buf)
		xmlBufferFree(buf);
	return s;
}

static xmlNodePtr
child(xmlNodePtr parent, const char *name, const char *text)
{
	return xmlNewTextChild(parent, NULL, (const xmlChar *)name, (const xmlChar *)text);
}

char *
vdi_xml_volume(const struct vdi_volume_spec *v, struct vdi_err *err)
{
	xmlDocPtr doc;
	xmlNodePtr root, n, t;
	char num[32];
	char *s;

	vdi_xml_init();
	doc = xmlNewDoc((const xmlChar *)"1.0");
	root = xmlNewNode(NULL, (const xmlChar *)"volume");
	xmlDocSetRootElement(doc, root);
	child(root, "name", v->name);
	snprintf(num, sizeof(num), "%lld", (long long)v->capacity);
	n = child(root, "capacity", num);
	xmlNewProp(n, (const xmlChar *)"unit", (const xmlChar *)"bytes");
	n = child(root, "allocation", "0");
	xmlNewProp(n, (const xmlChar *)"unit", (const xmlChar *)"bytes");
	t = child(root, "target", NULL);
	n = child(t, "format", NULL);
	xmlNewProp(n, (const xmlChar *)"type", (const xmlChar *)v->format);
	if (v->backing_path) {
		xmlNodePtr b = child(root, "backingStore", NULL);
		child(b, "path", v->backing_path);
		n = child(b, "format", NULL);
		xmlNewProp(n, (const xmlChar *)"type", (const xmlChar *)v->backing_format);
	}
	s = dump(doc, err);
	xmlFreeDoc(doc);
	return s;
}

static void
prop(xmlNodePtr n, const char *name, const char *val)
{
	xmlNewProp(n, (const xmlChar *)name, (const xmlChar *)val);
}

/* A display of type on a port libvirt picks, with a password, listening on listen. */
static void
graphics(xmlNodePtr dev, const char *type, const char *password, const char *listen)
{
	xmlNodePtr n = child(dev, "graphics", NULL), m;

	prop(n, "type", type);
	prop(n, "autoport", "yes");
	prop(n, "passwd", password);
	m = child(n, "listen", NULL);
	prop(m, "type", "address");
	prop(m, "address", listen);
}

static xmlNodePtr
add_disk(xmlNodePtr dev, const char *device, const char *format, const char *path, const char *target,
	 const char *bus)
{
	xmlNodePtr disk = child(dev, "disk", NULL), n;

	prop(disk, "type", "file");
	prop(disk, "device", device);
	n = child(disk, "driver", NULL);
	prop(n, "name", "qemu");
	prop(n, "type", format);
	if (strcmp(device, "disk") == 0)
		prop(n, "discard", "unmap");
	prop(child(disk, "source", NULL), "file", path);
	n = child(disk, "target", NULL);
	prop(n, "dev", target);
	prop(n, "bus", bus);
	if (strcmp(device, "cdrom") == 0)
		child(disk, "readonly", NULL);
	return disk;
}

/* <os>: q35; UEFI by firmware autoselection (secure boot with enrolled keys for a TPM profile). */
static void
add_os(xmlNodePtr root, const struct vdi_domain_spec *d)
{
	xmlNodePtr os = child(root, "os", NULL), t;

	t = child(os, "type", "hvm");
	prop(t, "arch", "x86_64");
	prop(t, "machine", "q35");
	if (strcmp(d->prof.firmware, "efi") == 0) {
		bool sb = vdi_profile_tpm(&d->prof);
		xmlNodePtr fw, f;
		prop(os, "firmware", "efi");
		fw = child(os, "firmware", NULL);
		f = child(fw, "feature", NULL);
		prop(f, "enabled", sb ? "yes" : "no");
		prop(f, "name", "enrolled-keys");
		f = child(fw, "feature", NULL);
		prop(f, "enabled", sb ? "yes" : "no");
		prop(f, "name", "secure-boot");
		if (sb)
			prop(child(os, "loader", NULL), "secure", "yes");
	}
	prop(child(os, "boot", NULL), "dev", "hd");
}

/* <features> and <clock>: for windows a localtime clock, and under KVM Hyper-V enlightenments. */
static void
add_features(xmlNodePtr root, const struct vdi_domain_spec *d)
{
	static const char *const hv[] = { "relaxed", "vapic", "spinlocks", "vpindex", "runtime", "synic",
					  "stimer", "reset", "frequencies", NULL };
	bool win = vdi_profile_windows(&d->prof);
	/* The enlightenments and the hypervclock are KVM's: QEMU's TCG refuses them. */
	bool hyperv = win && strcmp(d->type, "kvm") == 0;
	xmlNodePtr f = child(root, "features", NULL), clock, n;

	child(f, "acpi", NULL);
	child(f, "apic", NULL);
	if (hyperv) {
		xmlNodePtr h = child(f, "hyperv", NULL);
		prop(h, "mode", "custom");
		for (size_t i = 0; hv[i]; i++) {
			n = child(h, hv[i], NULL);
			prop(n, "state", "on");
			if (strcmp(hv[i], "spinlocks") == 0)
				prop(n, "retries", "8191");
		}
	}
	if (vdi_profile_tpm(&d->prof))
		prop(child(f, "smm", NULL), "state", "on");
	clock = child(root, "clock", NULL);
	prop(clock, "offset", win ? "localtime" : "utc");
	n = child(clock, "timer", NULL);
	prop(n, "name", "rtc");
	prop(n, "tickpolicy", "catchup");
	n = child(clock, "timer", NULL);
	prop(n, "name", "pit");
	prop(n, "tickpolicy", "delay");
	n = child(clock, "timer", NULL);
	prop(n, "name", "hpet");
	prop(n, "present", "no");
	if (hyperv) {
		n = child(clock, "timer", NULL);
		prop(n, "name", "hypervclock");
		prop(n, "present", "yes");
	}
}

/* The devices every profile has: USB, tablet, agent channel, redirection, sound, video, rng, console. */
static void
add_desktop_devices(xmlNodePtr dev, const struct vdi_domain_spec *d)
{
	xmlNodePtr n, m;

	n = child(dev, "controller", NULL);
	prop(n, "type", "usb");
	prop(n, "model", "qemu-xhci");
	prop(n, "ports", "15");
	if (d->console_log) {
		n = child(dev, "serial", NULL);
		prop(n, "type", "pty");
		m = child(n, "log", NULL);
		prop(m, "file", d->console_log);
		prop(m, "append", "off");
		prop(child(n, "target", NULL), "port", "0");
		n = child(dev, "console", NULL);
		prop(n, "type", "pty");
		m = child(n, "target", NULL);
		prop(m, "type", "serial");
		prop(m, "port", "0");
	}
	n = child(dev, "channel", NULL);
	prop(n, "type", "spicevmc");
	m = child(n, "target", NULL);
	prop(m, "type", "virtio");
	prop(m, "name", "com.redhat.spice.0");
	n = child(dev, "input", NULL);
	prop(n, "type", "tablet");
	prop(n, "bus", "usb");
	graphics(dev, "spice", d->password, d->listen);
	/* The browser console's display (vm-console relays it); QEMU runs it beside SPICE. */
	if (d->vnc_password)
		graphics(dev, "vnc", d->vnc_password, d->listen);
	n = child(dev, "sound", NULL);
	prop(n, "model", "ich9");
	prop(child(n, "audio", NULL), "id", "1");
	n = child(dev, "audio", NULL);
	prop(n, "id", "1");
	prop(n, "type", "spice");
	n = child(child(dev, "video", NULL), "model", NULL);
	prop(n, "type", d->prof.video);
	prop(n, "heads", "1");
	prop(n, "primary", "yes");
	for (int i = 0; i < 2; i++) {
		n = child(dev, "redirdev", NULL);
		prop(n, "bus", "usb");
		prop(n, "type", "spicevmc");
	}
	n = child(dev, "rng", NULL);
	prop(n, "model", "virtio");
	prop(child(n, "backend", "/dev/urandom"), "model", "random");
	if (vdi_profile_tpm(&d->prof)) {
		/* A transient domain's TPM state goes with it (persistent_state defaults to no). */
		n = child(dev, "tpm", NULL);
		prop(n, "model", "tpm-crb");
		m = child(n, "backend", NULL);
		prop(m, "type", "emulator");
		prop(m, "version", "2.0");
	}
}

char *
vdi_xml_domain(const struct vdi_domain_spec *d, struct vdi_err *err)
{
	xmlDocPtr doc;
	xmlNodePtr root, n, dev, md, ses;
	const char *bus = d->prof.disk_bus, *disk_bus, *cd_target;
	xmlNsPtr ns;
	char num[32];
	char *s;

	vdi_xml_init();
	doc = xmlNewDoc((const xmlChar *)"1.0");
	root = xmlNewNode(NULL, (const xmlChar *)"domain");
	xmlDocSetRootElement(doc, root);
	prop(root, "type", d->type);
	child(root, "name", d->name);
	md = child(root, "metadata", NULL);
	ses = xmlNewChild(md, NULL, (const xmlChar *)"session", NULL);
	ns = xmlNewNs(ses, (const xmlChar *)VDI_XMLNS, (const xmlChar *)VDI_XMLNS_PREFIX);
	xmlSetNs(ses, ns);
	snprintf(num, sizeof(num), "%lld", (long long)d->meta->session_id);
	prop(ses, "id", num);
	prop(ses, "user", d->meta->user);
	snprintf(num, sizeof(num), "%lld", (long long)d->meta->uservm_id);
	prop(ses, "uservm", num);
	snprintf(num, sizeof(num), "%lld", (long long)d->mem);
	n = child(root, "memory", num);
	prop(n, "unit", "bytes");
	snprintf(num, sizeof(num), "%lld", (long long)d->vcpus);
	child(root, "vcpu", num);
	add_os(root, d);
	add_features(root, d);
	child(root, "on_poweroff", "destroy");
	child(root, "on_reboot", "restart");
	child(root, "on_crash", "destroy");
	dev = child(root, "devices", NULL);
	/* The disk, then the seed on a SATA cdrom (q35 has no IDE). */
	disk_bus = strcmp(bus, "virtio") == 0 ? "virtio" : strcmp(bus, "scsi") == 0 ? "scsi" : "sata";
	if (strcmp(bus, "scsi") == 0) {
		n = child(dev, "controller", NULL);
		prop(n, "type", "scsi");
		prop(n, "model", "virtio-scsi");
	}
	add_disk(dev, "disk", "qcow2", d->disk_path, strcmp(bus, "virtio") == 0 ? "vda" : "sda", disk_bus);
	cd_target = strcmp(bus, "virtio") == 0 ? "sda" : "sdb";
	if (d->home_path) {
		/*
		 * The user's home disk: read-write, no overlay, on the system
		 * disk's bus; its serial names it for the guest
		 * (/dev/disk/by-id/...vdi-home), whatever the device order.
		 */
		n = add_disk(dev, "disk", "qcow2", d->home_path, strcmp(bus, "virtio") == 0 ? "vdb" : "sdb", disk_bus);
		child(n, "serial", VDI_HOME_SERIAL);
		if (strcmp(bus, "virtio") != 0)
			cd_target = "sdc";
	}
	if (d->seed_path)
		add_disk(dev, "cdrom", "raw", d->seed_path, cd_target, "sata");
	if (d->network || d->bridge) {
		n = child(dev, "interface", NULL);
		prop(n, "type", d->network ? "network" : "bridge");
		if (d->mac)
			prop(child(n, "mac", NULL), "address", d->mac);
		prop(child(n, "source", NULL), d->network ? "network" : "bridge", d->network ? d->network : d->bridge);
		prop(child(n, "model", NULL), "type", d->prof.nic);
	}
	add_desktop_devices(dev, d);
	s = dump(doc, err);
	xmlFreeDoc(doc);
	return s;
}

char *
vdi_xml_xpath_string(const char *xml, const char *xpath, struct vdi_err *err)
{
	xmlDocPtr doc;
	xmlXPathContextPtr ctx = NULL;
	xmlXPathObjectPtr obj = NULL;
	char *s = NULL;

	vdi_xml_init();
	doc = xmlReadMemory(xml, (int)strlen(xml), "libvirt.xml", NULL,
			    XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
	if (!doc) {
		vdi_err_set(err, VDI_R_FAIL, "libvirt returned XML that does not parse");
		return NULL;
	}
	ctx = xmlXPathNewContext(doc);
	if (ctx)
		obj = xmlXPathEvalExpression((const xmlChar *)xpath, ctx);
	if (obj && obj->type == XPATH_NODESET && obj->nodesetval && obj->nodesetval->nodeNr > 0) {
		xmlChar *c = xmlNodeGetContent(obj->nodesetval->nodeTab[0]);
		if (c) {
			s = vdi_xstrdup((const char *)c);
			xmlFree(c);
		}
	}
	xmlXPathFreeObject(obj);
	xmlXPathFreeContext(ctx);
	xmlFreeDoc(doc);
	return s;
}

int
vdi_xml_domain_ports(const char *xml, struct vdi_ports *p, struct vdi_err *err)
{
	char *spice = vdi_xml_xpath_string(xml, "/domain/devices/graphics[@type='spice']/@port", err);
	char *vnc = vdi_xml_xpath_string(xml, "/domain/devices/graphics[@type='vnc']/@port", err);
	int ret = -1;

	p->spice = spice ? strtoll(spice, NULL, 10) : 0;
	p->vnc = vnc ? strtoll(vnc, NULL, 10) : 0;
	if (p->vnc < 0)
		p->vnc = 0;
	if (p->spice <= 0) {
		vdi_err_set(err, VDI_R_FAIL, "the domain has no SPICE port");
		goto out;
	}
	ret = 0;
out:
	free(spice);
	free(vnc);
	return ret;
}

/* Set attribute name on every node xpath finds in doc (no-op where it finds none). */
static void
set_all(xmlXPathContextPtr ctx, const char *xpath, const char *name, const char *value)
{
	xmlXPathObjectPtr obj = xmlXPathEvalExpression((const xmlChar *)xpath, ctx);

	if (obj && obj->type == XPATH_NODESET && obj->nodesetval)
		for (int i = 0; i < obj->nodesetval->nodeNr; i++)
			xmlSetProp(obj->nodesetval->nodeTab[i], (const xmlChar *)name, (const xmlChar *)value);
	xmlXPathFreeObject(obj);
}

/* Drop attribute name from every node xpath finds in doc. */
static void
unset_all(xmlXPathContextPtr ctx, const char *xpath, const char *name)
{
	xmlXPathObjectPtr obj = xmlXPathEvalExpression((const xmlChar *)xpath, ctx);

	if (obj && obj->type == XPATH_NODESET && obj->nodesetval)
		for (int i = 0; i < obj->nodesetval->nodeNr; i++)
			xmlUnsetProp(obj->nodesetval->nodeTab[i], (const xmlChar *)name);
	xmlXPathFreeObject(obj);
}

/* Point the disk that reads from at to instead (no-op where none does). */
static void
set_disk_source(xmlXPathContextPtr ctx, const char *from, const char *to)
{
	xmlXPathObjectPtr obj = xmlXPathEvalExpression((const xmlChar *)"/domain/devices/disk/source[@file]", ctx);

	if (obj && obj->type == XPATH_NODESET && obj->nodesetval)
		for (int i = 0; i < obj->nodesetval->nodeNr; i++) {
			xmlNodePtr n = obj->nodesetval->nodeTab[i];
			xmlChar *f = xmlGetProp(n, (const xmlChar *)"file");
			if (f && strcmp((const char *)f, from) == 0)
				xmlSetProp(n, (const xmlChar *)"file", (const xmlChar *)to);
			xmlFree(f);
		}
	xmlXPathFreeObject(obj);
}

char *
vdi_xml_domain_edit(const char *xml, const struct vdi_xml_edit *e, struct vdi_err *err)
{
	xmlDocPtr doc;
	xmlXPathContextPtr ctx;
	char *s = NULL;

	vdi_xml_init();
	doc = xmlReadMemory(xml, (int)strlen(xml), "libvirt.xml", NULL,
			    XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
	if (!doc) {
		vdi_err_set(err, VDI_R_FAIL, "libvirt returned XML that does not parse");
		return NULL;
	}
	if (!(ctx = xmlXPathNewContext(doc))) {
		vdi_err_set(err, VDI_R_FAIL, "cannot read XML");
		goto out;
	}
	xmlXPathRegisterNs(ctx, (const xmlChar *)VDI_XMLNS_PREFIX, (const xmlChar *)VDI_XMLNS);
	if (e->listen) {
		set_all(ctx, "/domain/devices/graphics[@listen]", "listen", e->listen);
		set_all(ctx, "/domain/devices/graphics/listen[@type='address']", "address", e->listen);
	}
	/*
	 * The serial console's log goes on where it went before a move (the
	 * file is the session's own): a start begins it afresh, a move appends.
	 */
	if (e->append_log)
		set_all(ctx, "/domain/devices/serial/log", "append", "on");
	if (e->network) {
		set_all(ctx, "/domain/devices/interface[@type='network']/source", "network", e->network);
	} else if (e->bridge) {
		set_all(ctx, "/domain/devices/interface[@type='bridge']/source", "bridge", e->bridge);
	}
	if (e->disk_from && e->disk_to)
		set_disk_source(ctx, e->disk_from, e->disk_to);
	if (e->vnc_password)
		set_all(ctx, "/domain/devices/graphics[@type='vnc']", "passwd", e->vnc_password);
	if (e->password) {
		set_all(ctx, "/domain/devices/graphics[@type='spice']", "passwd", e->password);
		/* A ticket's end is set on the running domain (vm-start --vv), never carried over. */
		unset_all(ctx, "/domain/devices/graphics[@passwdValidTo]", "passwdValidTo");
	}
	if (e->session_id > 0) {
		char num[32];
		snprintf(num, sizeof(num), "%lld", (long long)e->session_id);
		set_all(ctx, "/domain/metadata/vdi:session", "id", num);
	}
	xmlXPathFreeContext(ctx);
	s = dump(doc, err);
out:
	xmlFreeDoc(doc);
	return s;
}

char *
vdi_xml_domain_move(const char *xml, const char *listen, const char *network, const char *bridge,
		    struct vdi_err *err)
{
	struct vdi_xml_edit e = { .listen = listen, .network = network, .bridge = bridge, .append_log = true };

	return vdi_xml_domain_edit(xml, &e, err);
}
