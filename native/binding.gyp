{
  # pg_node_worker_bridge.node: the N-API addon the worker's JavaScript require()s.
  #
  # Build (top-level Makefile does this; node-gyp must never download headers):
  #   PG_CONFIG=/path/to/pg_config node node_modules/node-gyp/bin/node-gyp.js rebuild \
  #       --directory=native --nodedir=<prefix holding include/node>
  # where --nodedir is NODE_INCLUDE/../.. from scripts/node-env.sh (/usr, or .deps/libnode/usr).
  # pg_config: the PG_CONFIG environment variable, or node-gyp ... -- -Dpg_config=/path/to/pg_config
  #
  # PostgreSQL and napi_* symbols are left undefined: they resolve at load time inside the
  # postgres process (postgres exports its symbols; libnode is loaded RTLD_GLOBAL). Nothing here
  # links postgres or libnode.
  'variables': {
    'pg_config%': '<!(echo "${PG_CONFIG:-pg_config}")',
    # the C++ standard the Node headers need: node-gyp configure ... -- -Dcxxstd=c++20 (Node 24)
    'cxxstd%': 'c++17',
  },
  'targets': [
    {
      'target_name': 'pg_node_worker_bridge',
      # addon.cc compiles bridge.cc, buffers.cc, control.cc, convert.cc, log.cc, messaging.cc,
      # process.cc, shared.cc and sql.cc as one unit (see there why)
      'sources': [ 'addon.cc', 'guard.c',
                   'convert_ops.c', 'plan_ops.c', 'execute_ops.c', 'result_ops.c', 'xact_ops.c',
                   'log_ops.c', 'control_ops.c', 'messaging_ops.c', 'buffers_ops.c' ],
      'include_dirs': [
        '<!(node -p "require(\'node-addon-api\').include_dir")',
        '<!(<(pg_config) --includedir-server)',
      ],
      'defines': [
        'NAPI_VERSION=8',
        'NODE_ADDON_API_DISABLE_CPP_EXCEPTIONS',
        # a throw into a JS engine that is being stopped (node::Stop at shutdown) is dropped
        # instead of napi_fatal_error: the worker is leaving anyway
        'NODE_API_SWALLOW_UNTHROWABLE_EXCEPTIONS',
        # PGXS compiles server code with _GNU_SOURCE (g++ defines it anyway; gcc does not)
        '_GNU_SOURCE',
      ],
      # what PGXS uses for server code, semantically relevant to PostgreSQL's headers
      'cflags': [ '-fno-strict-aliasing', '-fwrapv' ],
      'cflags_c': [ '-fexcess-precision=standard' ],
      # the standard the Node headers need (node-env.sh's NODE_CXXSTD: c++20 from Node 24 on)
      'cflags_cc': [ '-std=<(cxxstd)', '-fno-exceptions', '-Wno-register' ],
      'cflags_cc!': [ '-std=gnu++20', '-std=gnu++17', '-std=gnu++1y', '-std=gnu++14' ],
      'ldflags': [ '-Wl,-z,undefs' ],
      'ldflags!': [ '-Wl,-z,defs', '-Wl,--no-undefined' ],
    },
  ],
}
