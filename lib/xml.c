/* xml.c - building and reading libvirt XML with libxml2 (see xml.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libxml/parser.h>
#include <libxml/tree.h>
#include <libxml/xpath.h>

#include "meta.h"
#include "mem.h"
#include "xml.h"

/* Serialise doc's root element into a new string. */
static char *
dump(xmlDocPtr doc, struct vdi_err *err)
{
	xmlBufferPtr buf = xmlBufferCreate();
	char *s = NULL;

	if (buf && xmlNodeDump(buf, doc, xmlDocGetRootElement(doc), 0, 1) >= 0)
		s = vdi_xstrdup((const char *)xmlBufferContent(buf));
	if (!s)
		vdi_err_set(err, VDI_EFAIL, "cannot format XML");
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
	xmlDocPtr doc = xmlNewDoc((const xmlChar *)"1.0");
	xmlNodePtr root, n, t;
	char num[32];
	char *s;

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

char *
vdi_xml_domain(const struct vdi_domain_spec *d, struct vdi_err *err)
{
	xmlDocPtr doc = xmlNewDoc((const xmlChar *)"1.0");
	xmlNodePtr root, n, dev, disk, md, ses;
	xmlNsPtr ns;
	char num[32];
	char *s;

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
	n = child(root, "os", NULL);
	prop(child(n, "type", "hvm"), "arch", "x86_64");
	prop(child(n, "boot", NULL), "dev", "hd");
	child(child(root, "features", NULL), "acpi", NULL);
	child(root, "on_poweroff", "destroy");
	child(root, "on_reboot", "restart");
	child(root, "on_crash", "destroy");
	dev = child(root, "devices", NULL);
	disk = child(dev, "disk", NULL);
	prop(disk, "type", "file");
	prop(disk, "device", "disk");
	n = child(disk, "driver", NULL);
	prop(n, "name", "qemu");
	prop(n, "type", "qcow2");
	prop(child(disk, "source", NULL), "file", d->disk_path);
	n = child(disk, "target", NULL);
	prop(n, "dev", "vda");
	prop(n, "bus", "virtio");
	if (d->seed_path) {
		disk = child(dev, "disk", NULL);
		prop(disk, "type", "file");
		prop(disk, "device", "cdrom");
		n = child(disk, "driver", NULL);
		prop(n, "name", "qemu");
		prop(n, "type", "raw");
		prop(child(disk, "source", NULL), "file", d->seed_path);
		n = child(disk, "target", NULL);
		prop(n, "dev", "hdc");
		prop(n, "bus", "ide");
		child(disk, "readonly", NULL);
	}
	n = child(dev, "graphics", NULL);
	prop(n, "type", "spice");
	prop(n, "autoport", "yes");
	prop(n, "passwd", d->password);
	{
		xmlNodePtr l = child(n, "listen", NULL);
		prop(l, "type", "address");
		prop(l, "address", d->listen);
	}
	prop(child(child(dev, "video", NULL), "model", NULL), "type", "vga");
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

	doc = xmlReadMemory(xml, (int)strlen(xml), "libvirt.xml", NULL,
			    XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
	if (!doc) {
		vdi_err_set(err, VDI_EFAIL, "libvirt returned XML that does not parse");
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
