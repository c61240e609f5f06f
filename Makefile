# vdi-tools - provisioning and load balancing of virtual desktops on libvirt hosts.
#
#   make            build the programs into build/bin (SANITIZE=1: ASan+UBSan, into build-san/)
#   make check      install missing packages, build, run unit and bats tests against a lab
#   make check-unit the unit tests only (CI runs them with SANITIZE=1 too)
#   make demo       a lab of real libvirt hosts, and vdi-tools at work on it
#   make bench      benchmarks (test/bench), figures as ratios to a baseline
#   make install    PREFIX=/usr/local DESTDIR=
#   make clean
#   V=1 shows the commands.

VERSION   = 0.1.0
PREFIX   ?= /usr/local
BINDIR    = $(PREFIX)/bin
MANDIR    = $(PREFIX)/share/man
CC       ?= gcc
CFLAGS   ?= -O2 -g
PKGS      = sqlite3 libpq libxml-2.0
PKGS_VIRT = libvirt libvirt-qemu json-c
PKGS_NET  = libcurl nettle
PKGS_WS   = libwebsockets

ifeq ($(SANITIZE),1)
O        := build-san
SANFLAGS  = -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
else
O        := build
SANFLAGS  =
endif

ifeq ($(V),1)
Q =
else
Q = @
endif

WARN = -Wall -Wextra -Werror -Wshadow -Wformat=2 -Wstrict-prototypes -Wmissing-prototypes \
       -Wold-style-definition -Wpointer-arith -Wvla -Wno-unused-parameter
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) $(PKGS_VIRT) $(PKGS_NET) $(PKGS_WS) 2>/dev/null)
# -iquote, not -I: lib/sched.h must never stand in for the system <sched.h>.
ALL_CFLAGS  = -std=gnu11 -D_GNU_SOURCE -DVDI_VERSION='"$(VERSION)"' $(INC) -iquote $(O) \
              $(PKG_CFLAGS) $(WARN) $(CFLAGS) $(SANFLAGS) -pthread -MMD -MP
ALL_LDFLAGS = -Wl,--as-needed $(LDFLAGS) $(SANFLAGS) -pthread
LIBS_CORE  := $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lm
LIBS_VIRT  := $(shell pkg-config --libs $(PKGS_VIRT) 2>/dev/null)
LIBS_NET   := $(shell pkg-config --libs $(PKGS_NET) 2>/dev/null)
LIBS_WS    := $(shell pkg-config --libs $(PKGS_WS) 2>/dev/null)

# libvdi is split by dependency: programs that only use the VMDB never load libvirt.
# libvdi.a: SQLite and libxml2; libvdi-virt.a: libvirt; libvdi-net.a: libcurl and nettle;
# libvdi-ws.a: libwebsockets (vm-console alone).
#
# lib/ is in layers, each a folder that may use only itself and the layers
# below it (see vdi-tools(7), THE CODE):
#   base  errors, memory, names, parsing, config, output, files, XML, ISO, CSV
#   db    the VMDB seam (db.h), its SQLite backend, the rows, the pure planners
#   virt  adapters: libvirt connections and domains, images over HTTP
#   flow  the workflows: start, copy, prepare, import, reap, poll, watch, connect, migrate, relay
# Each layer is compiled with only its own and lower include paths, so a
# lower layer that includes a higher one does not build; scripts/check-layers
# says the same in words, and that sqlite3_ is spoken only in lib/db/sqlite.c,
# libpq only in lib/db/pg.c.
LAYERS     = base db virt flow
LAYER_base = base
LAYER_db   = base db
LAYER_virt = base db virt
LAYER_flow = base db virt flow
layer_inc  = $(foreach l,$(LAYER_$(1)),-iquote lib/$(l))
ALL_INC    = $(call layer_inc,flow) -iquote cmd

BASE_SRC = $(addprefix lib/base/,profile.c err.c mem.c nss.c strv.c csv.c batch.c names.c uri.c parse.c out.c \
           config.c file.c meta.c report.c xml.c iso.c seed.c form.c clock.c proc.c)
DB_SRC   = $(addprefix lib/db/,db.c event.c sqlite.c pg.c vmdb.c host.c master.c uservm.c home.c sched.c assign.c session.c reap.c \
           request.c rebalance.c metrics.c group.c)
CORE_SRC = $(BASE_SRC) $(DB_SRC)
VIRT_SRC = $(addprefix lib/virt/,virt.c conns.c) \
           $(addprefix lib/flow/,start.c prepare.c warm.c domlog.c reaper.c poll.c copy.c watch.c connect.c migrate.c)
NET_SRC  = lib/virt/image.c lib/flow/import.c lib/db/token.c lib/db/console.c lib/base/rfb.c
WS_SRC   = lib/flow/relay.c
CLI_SRC  = cmd/cli.c
PROGS    = vm-hosts vm-master vm-copy vm-assign vm-start vm-reap vm-ls vm-log vm-group vm-watch vm-connect vm-migrate \
           vm-rebalance vdi-db vm-console
# Programs that need libvirt, and those that need libcurl.
VIRT_PROGS = vm-hosts vm-master vm-copy vm-start vm-reap vm-watch vm-connect vm-migrate vm-rebalance
NET_PROGS  = vm-master vm-connect vm-console
WS_PROGS   = vm-console

UNIT_TESTS = test_parse test_file test_names test_nss test_out test_config test_db test_image test_seed test_sched test_csv test_reap test_batch test_xml test_rebalance test_iso test_threads test_form test_proc test_flows test_dialect test_console

CORE_OBJ = $(CORE_SRC:%.c=$(O)/%.o) $(O)/schema-sqlite.gen.o $(O)/schema-postgresql.gen.o
VIRT_OBJ = $(VIRT_SRC:%.c=$(O)/%.o)
NET_OBJ  = $(NET_SRC:%.c=$(O)/%.o)
WS_OBJ   = $(WS_SRC:%.c=$(O)/%.o)
CLI_OBJ  = $(CLI_SRC:%.c=$(O)/%.o)
BINS     = $(PROGS:%=$(O)/bin/%)
UNIT_BINS = $(UNIT_TESTS:%=$(O)/test/%)

all: $(BINS)

# What a file may include: its own layer and the ones below; cmd/ and test/ see all.
INC = $(ALL_INC)
$(foreach l,$(LAYERS),$(eval $$(O)/lib/$(l)/%.o: INC = $$(call layer_inc,$(l))))
$(O)/schema-%.gen.o: INC = $(call layer_inc,db)

$(O)/%.o: %.c
	@mkdir -p $(@D)
	@$(if $(Q),echo "  CC      $<")
	$(Q)$(CC) $(ALL_CFLAGS) -c -o $@ $<

# Each engine's migrations, compiled in: schema/sqlite/ and schema/postgresql/.
$(O)/schema-sqlite.gen.c: scripts/embed-schema $(sort $(wildcard schema/sqlite/*.sql))
	@mkdir -p $(@D)
	@$(if $(Q),echo "  GEN     $@")
	$(Q)scripts/embed-schema vdi_migrations $(sort $(wildcard schema/sqlite/*.sql)) > $@.tmp && mv $@.tmp $@

$(O)/schema-postgresql.gen.c: scripts/embed-schema $(sort $(wildcard schema/postgresql/*.sql))
	@mkdir -p $(@D)
	@$(if $(Q),echo "  GEN     $@")
	$(Q)scripts/embed-schema vdi_migrations_pg $(sort $(wildcard schema/postgresql/*.sql)) > $@.tmp && mv $@.tmp $@

$(O)/schema-%.gen.o: $(O)/schema-%.gen.c
	@$(if $(Q),echo "  CC      $<")
	$(Q)$(CC) $(ALL_CFLAGS) -c -o $@ $<

$(O)/libvdi.a: $(CORE_OBJ)
	@$(if $(Q),echo "  AR      $@")
	$(Q)rm -f $@ && ar rcs $@ $^

$(O)/libvdi-virt.a: $(VIRT_OBJ)
	@$(if $(Q),echo "  AR      $@")
	$(Q)rm -f $@ && ar rcs $@ $^

$(O)/libvdi-net.a: $(NET_OBJ)
	@$(if $(Q),echo "  AR      $@")
	$(Q)rm -f $@ && ar rcs $@ $^

$(O)/libvdi-ws.a: $(WS_OBJ)
	@$(if $(Q),echo "  AR      $@")
	$(Q)rm -f $@ && ar rcs $@ $^

$(O)/bin/%: $(O)/cmd/%.o $(CLI_OBJ) $(O)/libvdi-ws.a $(O)/libvdi-net.a $(O)/libvdi-virt.a $(O)/libvdi.a
	@mkdir -p $(@D)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(ALL_LDFLAGS) -o $@ $(O)/cmd/$*.o $(CLI_OBJ) -Wl,--start-group \
		$(if $(filter $*,$(WS_PROGS)),$(O)/libvdi-ws.a) \
		$(if $(filter $*,$(NET_PROGS)),$(O)/libvdi-net.a) \
		$(if $(filter $*,$(VIRT_PROGS)),$(O)/libvdi-virt.a) $(O)/libvdi.a -Wl,--end-group \
		$(if $(filter $*,$(WS_PROGS)),$(LIBS_WS)) $(if $(filter $*,$(NET_PROGS)),$(LIBS_NET)) \
		$(if $(filter $*,$(VIRT_PROGS)),$(LIBS_VIRT)) $(LIBS_CORE)

$(O)/test/%: $(O)/test/unit/%.o $(O)/libvdi-net.a $(O)/libvdi.a
	@mkdir -p $(@D)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(ALL_LDFLAGS) -o $@ $< $(O)/libvdi-net.a $(O)/libvdi.a $(LIBS_NET) $(LIBS_CORE) -lcmocka

# The workflows' unit tests also link libvirt (its test:///default driver, a real one).
$(O)/test/test_flows: $(O)/test/unit/test_flows.o $(O)/libvdi-net.a $(O)/libvdi-virt.a $(O)/libvdi.a
	@mkdir -p $(@D)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(ALL_LDFLAGS) -o $@ $< -Wl,--start-group $(O)/libvdi-net.a $(O)/libvdi-virt.a $(O)/libvdi.a \
		-Wl,--end-group $(LIBS_NET) $(LIBS_VIRT) $(LIBS_CORE) -lcmocka

# The console's unit tests link the relay, and so libwebsockets.
$(O)/test/test_console: $(O)/test/unit/test_console.o $(O)/libvdi-ws.a $(O)/libvdi-net.a $(O)/libvdi.a
	@mkdir -p $(@D)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(ALL_LDFLAGS) -o $@ $< -Wl,--start-group $(O)/libvdi-ws.a $(O)/libvdi-net.a $(O)/libvdi.a \
		-Wl,--end-group $(LIBS_WS) $(LIBS_NET) $(LIBS_CORE) -lcmocka

unit: $(UNIT_BINS)

$(O)/bench/floor: $(O)/test/bench/floor.o $(O)/libvdi.a
	@mkdir -p $(@D)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(ALL_LDFLAGS) -o $@ $< $(O)/libvdi.a $(LIBS_CORE)

deps:
	$(Q)scripts/install-deps

# The unit tests alone (a minute under SANITIZE=1, which CI runs before make check).
check-unit: deps
	$(Q)$(MAKE) --no-print-directory unit
	$(Q)O=$(O) test/run --unit

check: deps
	$(Q)scripts/check-layers
	$(Q)$(MAKE) --no-print-directory all unit
	$(Q)O=$(O) test/run

# The demo builds quietly: its log is in $(O)/build.log, shown only when the build fails.
demo: deps
	@mkdir -p $(O) && echo "building vdi-tools (log: $(O)/build.log)"
	@$(MAKE) --no-print-directory all >$(O)/build.log 2>&1 || { cat $(O)/build.log; exit 1; }
	$(Q)O=$(O) scripts/demo $(DEMO_ARGS)

bench: deps
	$(Q)$(MAKE) --no-print-directory all $(O)/bench/floor
	$(Q)O=$(O) test/bench/run

lint:
	shellcheck scripts/vdi-lab scripts/mkguest scripts/install-deps scripts/demo scripts/embed-schema scripts/check-layers test/run .ci/run \
		test/bench/run test/bench/copy test/bench/pg-assign test/bench/brokers test/bench/update test/pg-server
	shellcheck -s bash scripts/vdi-tools.bash-completion
	for m in man/*.[157]; do mandoc -T lint -W warning $$m || exit 1; done

# Bash completion: one name per program, as bash-completion loads a
# completion by the command's name (a link to the one file for each).
COMPDIR = $(PREFIX)/share/bash-completion/completions
DOCDIR  = $(PREFIX)/share/doc/vdi-tools

install: all
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(MANDIR)/man5 $(DESTDIR)$(MANDIR)/man7 \
		$(DESTDIR)$(COMPDIR) $(DESTDIR)$(DOCDIR)/examples
	install -m 0755 $(BINS) $(DESTDIR)$(BINDIR)/
	install -m 0755 scripts/vdi-lab $(DESTDIR)$(BINDIR)/vdi-lab
	install -m 0755 scripts/mkguest $(DESTDIR)$(BINDIR)/mkguest
	# The pages and the examples name /usr/local; installed, they name where it went (PREFIX).
	for f in man/*.[157] scripts/examples/* README; do \
		case $$f in man/*) d=$(DESTDIR)$(MANDIR)/man$${f##*.};; scripts/*) d=$(DESTDIR)$(DOCDIR)/examples;; \
		*) d=$(DESTDIR)$(DOCDIR);; esac; \
		sed 's|/usr/local|$(PREFIX)|g' "$$f" > "$$d/$${f##*/}.tmp" && chmod 0644 "$$d/$${f##*/}.tmp" && \
		mv "$$d/$${f##*/}.tmp" "$$d/$${f##*/}" || exit 1; \
	done
	install -m 0644 scripts/vdi-tools.bash-completion $(DESTDIR)$(COMPDIR)/vm-hosts
	for p in $(filter-out vm-hosts,$(PROGS)); do ln -sf vm-hosts $(DESTDIR)$(COMPDIR)/$$p || exit 1; done

clean:
	rm -rf build build-san

.PHONY: all unit deps check check-unit demo bench lint install clean
.SECONDARY:

-include $(shell find $(O) -name '*.d' 2>/dev/null)
