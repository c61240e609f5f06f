/* xml.c - building and reading libvirt XML with libxml2 (see xml.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libxml/parser.h>
#include <libxml/tree.h>
#include <libxml/xpath.h>

#include "xml.h"

/* Serialise doc's root element into a new string. */
static char *
dump(xmlDocPtr doc, struct vdi_err *err)
{
	xmlBufferPtr buf = xmlBufferCreate();
	char *s = NULL;

	if (buf && xmlNodeDump(buf, doc, xmlDocGetRootElement(doc), 0, 1) >= 0)
		s = strdup((const char *)xmlBufferContent(buf));
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
			s = strdup((const char *)c);
			xmlFree(c);
		}
	}
	xmlXPathFreeObject(obj);
	xmlXPathFreeContext(ctx);
	xmlFreeDoc(doc);
	return s;
}
