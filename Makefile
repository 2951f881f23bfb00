# pg_node_worker — top-level Makefile (GNU make)
#
#   make deps        install build/runtime dependencies (scripts/deps.sh; root, or it prints commands)
#   make check-deps  only report what is missing
#   make             build extension/ (PGXS + runtime), the native addon (node-gyp), the TypeScript
#   make install     install into the server of $(PG_CONFIG) (+ DESTDIR); builds first if needed
#   make test        all + install + `npx vitest run`: the tests load the INSTALLED extension into
#                    real clusters of the PG_CONFIG's server (run as the `postgres` OS user when root)
#   make demo | bench | clean | distclean
#
# Variables: PG_CONFIG (default pg_config), DESTDIR, PGNW_BINDIR (where the `pg-node-worker`
# command goes besides pg_config's bindir; default /usr/local/bin, empty: not there).
# The Node runtime (libnode of Node 18, 20, 22 or 24) is located by scripts/node-env.sh (system
# route: Debian's libnode-dev; private route: .deps/libnode; prefix route: PGNW_NODE_PREFIX); its
# values are passed to extension/Makefile as
#   PG_CONFIG NODE_ROUTE NODE_INCLUDE NODE_LIBDIR NODE_PREFIX NODE_VERSION NODE_SONAME NODE_CXXSTD

SHELL := /bin/bash
.DEFAULT_GOAL := all
.DELETE_ON_ERROR:

TOP := $(patsubst %/,%,$(dir $(abspath $(lastword $(MAKEFILE_LIST)))))

PG_CONFIG ?= pg_config
# node-gyp runs gyp from native/: make a relative PG_CONFIG path absolute
PG_CONFIG_PATH = $(if $(findstring /,$(PG_CONFIG)),$(abspath $(PG_CONFIG)),$(PG_CONFIG))

NODE ?= node
NPM ?= npm
NODE_GYP = $(NODE) $(TOP)/node_modules/node-gyp/bin/node-gyp.js

# ---------------------------------------------------------------------------------------------
# scripts/node-env.sh, run at most once per make invocation and only by targets that need it.
# (A recursively expanded variable that replaces itself by its value on first use.)
_NODE_ENV_RAW = $(eval _NODE_ENV_RAW := $$(shell bash '$(TOP)/scripts/node-env.sh' --make || echo NODE_ENV_FAILED))$(_NODE_ENV_RAW)
_node_env = $(if $(filter NODE_ENV_FAILED,$(_NODE_ENV_RAW)),$(error scripts/node-env.sh found no supported Node runtime (message above): run `make deps`),$(patsubst $(1)=%,%,$(filter $(1)=%,$(_NODE_ENV_RAW))))

NODE_ROUTE   = $(call _node_env,NODE_ROUTE)
NODE_INCLUDE = $(call _node_env,NODE_INCLUDE)
NODE_LIBDIR  = $(call _node_env,NODE_LIBDIR)
NODE_PREFIX  = $(call _node_env,NODE_PREFIX)
NODE_VERSION = $(call _node_env,NODE_VERSION)
NODE_SONAME  = $(call _node_env,NODE_SONAME)
NODE_CXXSTD  = $(call _node_env,NODE_CXXSTD)
NODE_MAJOR   = $(call _node_env,NODE_MAJOR)
NODE_SNAPSHOT = $(call _node_env,NODE_SNAPSHOT)
# node-gyp --nodedir: the prefix holding include/node (/usr, or .deps/libnode/usr)
NODE_GYP_NODEDIR = $(abspath $(NODE_INCLUDE)/../..)

# what extension/Makefile receives
EXT_VARS = PG_CONFIG='$(PG_CONFIG_PATH)' NODE_ROUTE='$(NODE_ROUTE)' NODE_INCLUDE='$(NODE_INCLUDE)' \
           NODE_LIBDIR='$(NODE_LIBDIR)' NODE_PREFIX='$(NODE_PREFIX)' NODE_VERSION='$(NODE_VERSION)' \
           NODE_SONAME='$(NODE_SONAME)' NODE_CXXSTD='$(NODE_CXXSTD)' NODE_SNAPSHOT='$(NODE_SNAPSHOT)'

# pkglibdir of the target server, asked once, only when installing
_PKGLIBDIR = $(eval _PKGLIBDIR := $$(shell '$(PG_CONFIG_PATH)' --pkglibdir))$(_PKGLIBDIR)
INSTDIR = $(DESTDIR)$(_PKGLIBDIR)/pg_node_worker
_SHAREDIR = $(eval _SHAREDIR := $$(shell '$(PG_CONFIG_PATH)' --sharedir))$(_SHAREDIR)
_BINDIR = $(eval _BINDIR := $$(shell '$(PG_CONFIG_PATH)' --bindir))$(_BINDIR)
# the `pg-node-worker` command: in pg_config's bindir (one per server) and on PATH
PGNW_BINDIR ?= /usr/local/bin

BRIDGE = native/build/Release/pg_node_worker_bridge.node
# node-gyp runs its own make: keep this make's flags/jobserver (and command-line variables such
# as DESTDIR) out of it
GYP_ENV = env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL PG_CONFIG='$(PG_CONFIG_PATH)'

.PHONY: all deps check-deps check-pg extension native ts node-modules install test demo bench clean distclean help

# heap limits (MB) to make start-up snapshots for where libnode has none of its own
# (scripts/snapshot.sh); 256 is node_worker.heap_limit_mb's default
SNAPSHOT_HEAP_MB ?= 256

# the PostgreSQL majors the source supports (extension/compat.h holds the differences)
PG_SUPPORTED = 15 16 17 18

# ---------------------------------------------------------------------------------------------
all: extension native ts

deps:
	bash scripts/deps.sh

check-deps:
	@bash scripts/deps.sh --check || { \
	  echo; echo "Missing dependencies: run \`make deps\` as root (or the commands above)."; exit 1; }

help:
	@sed -n '3,14p' $(TOP)/Makefile | sed 's/^# \{0,1\}//'

# one line naming the server found and the supported ones, before anything compiles
check-pg:
	@v=$$('$(PG_CONFIG_PATH)' --version 2>/dev/null) || { \
	  echo "make: cannot run $(PG_CONFIG_PATH): set PG_CONFIG to the server's pg_config, or run make deps"; exit 1; }; \
	m=$$(printf '%s\n' "$$v" | sed -n 's/^PostgreSQL \([0-9][0-9]*\).*/\1/p'); \
	case " $(PG_SUPPORTED) " in *" $$m "*) ;; *) \
	  echo "make: $(PG_CONFIG_PATH) is $$v; pg_node_worker supports PostgreSQL $(PG_SUPPORTED)"; exit 1 ;; esac

extension: check-pg
	@test -f extension/Makefile || { echo "extension/Makefile is missing"; exit 1; }
	$(MAKE) -C extension $(EXT_VARS)

# node-gyp: configure only when needed (first build, binding.gyp changed, other Node headers or
# pg_config), then an incremental build. --nodedir keeps node-gyp from downloading headers.
native: node-modules check-pg
	@set -e; \
	cfg='nodedir=$(NODE_GYP_NODEDIR) pg_config=$(PG_CONFIG_PATH) version=$(NODE_VERSION) std=$(NODE_CXXSTD)'; \
	if [ ! -f native/build/Makefile ] || [ native/binding.gyp -nt native/build/Makefile ] || \
	   [ "$$(cat native/build/.pgnw-config 2>/dev/null)" != "$$cfg" ]; then \
	  echo "PG_CONFIG='$(PG_CONFIG_PATH)' $(NODE_GYP) configure --directory=native --nodedir='$(NODE_GYP_NODEDIR)'"; \
	  $(GYP_ENV) $(NODE_GYP) configure --directory=native --nodedir='$(NODE_GYP_NODEDIR)' --loglevel=warn -- -Dcxxstd=$(NODE_CXXSTD); \
	  echo "$$cfg" > native/build/.pgnw-config; \
	fi; \
	echo "$(NODE_GYP) build --directory=native"; \
	$(GYP_ENV) $(NODE_GYP) build --directory=native --nodedir='$(NODE_GYP_NODEDIR)' --loglevel=warn
	@test -f $(BRIDGE)

# dist/ only when one of its sources changed: `npm run build` (tsc, then esbuild for the runtime)
# is ~20 s of CPU, and make, make install, make test and make demo each ask for `ts`
TS_INPUTS := $(shell find src -name '*.ts') tsconfig.json package.json package-lock.json scripts/build-ts.mjs
TS_STAMP = dist/.build-stamp

ts: $(TS_STAMP)

$(TS_STAMP): $(TS_INPUTS) | node-modules
	$(NPM) run build
	@touch $@

node-modules:
	@if [ ! -d node_modules ]; then echo "$(NPM) ci"; $(NPM) ci --no-audit --no-fund; fi

# ---------------------------------------------------------------------------------------------
install: all
	$(MAKE) -C extension install $(EXT_VARS)
	@test -n '$(_PKGLIBDIR)' || { echo "cannot get pkglibdir from $(PG_CONFIG_PATH) --pkglibdir"; exit 1; }
	install -d -m 0755 '$(INSTDIR)'
	install -m 0644 dist/runtime.js '$(INSTDIR)/runtime.js'
	install -m 0755 $(BRIDGE) '$(INSTDIR)/pg_node_worker_bridge.node'
	printf '%s\n' '$(NODE_VERSION)' > '$(INSTDIR)/node-version.tmp' && chmod 0644 '$(INSTDIR)/node-version.tmp' && mv -f '$(INSTDIR)/node-version.tmp' '$(INSTDIR)/node-version'
	@set -e; if [ '$(NODE_ROUTE)' != system ]; then \
	  echo "install -d -m 0755 '$(INSTDIR)/lib'"; install -d -m 0755 '$(INSTDIR)/lib'; \
	  src=$$(readlink -f '$(NODE_LIBDIR)/$(NODE_SONAME)'); \
	  echo "install -m 0755 $$src '$(INSTDIR)/lib/$(NODE_SONAME)'"; install -m 0755 "$$src" '$(INSTDIR)/lib/$(NODE_SONAME)'; \
	else \
	  echo "rm -rf '$(INSTDIR)/lib'"; rm -rf '$(INSTDIR)/lib'; \
	fi
	@NODE_PREFIX='$(NODE_PREFIX)' bash scripts/snapshot.sh '$(INSTDIR)' '$(NODE_VERSION)' '$(NODE_SNAPSHOT)' $(SNAPSHOT_HEAP_MB)
	@PKGLIB_REAL='$(_PKGLIBDIR)/pg_node_worker' bash scripts/install-sdk.sh '$(PG_CONFIG_PATH)' '$(INSTDIR)' \
	  '$(DESTDIR)$(_SHAREDIR)/pg_node_worker' '$(DESTDIR)$(_BINDIR)' $(if $(PGNW_BINDIR),'$(DESTDIR)$(PGNW_BINDIR)')
	@echo "installed into $(INSTDIR) (Node $(NODE_VERSION), $(NODE_ROUTE) route)"

# The tests start real clusters of the PG_CONFIG's server with the INSTALLED extension, so this
# installs into that server first (as root: the clusters run as the `postgres` OS user).
test: install
	@mkdir -p .tmp
	@rc=0; PG_CONFIG='$(PG_CONFIG_PATH)' npx --no-install vitest run --reporter=default --reporter=json \
	  --outputFile.json=.tmp/vitest.json || rc=$$?; \
	node scripts/test-summary.mjs .tmp/vitest.json; exit $$rc

demo:
	bash scripts/demo.sh

bench:
	$(NPM) run bench

clean:
	@if [ -f extension/Makefile ]; then \
	  echo "$(MAKE) -C extension clean"; \
	  $(MAKE) -C extension clean PG_CONFIG='$(PG_CONFIG_PATH)' $(shell bash '$(TOP)/scripts/node-env.sh' --make 2>/dev/null); \
	fi
	rm -rf native/build dist .tmp

distclean: clean
	rm -rf .deps
