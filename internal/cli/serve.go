package cli

import (
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"
	"github.com/wail-cdc/wail/internal/config"
	"github.com/wail-cdc/wail/internal/server"
)

type serveFlags struct {
	configFile  string
	dataDir     string
	listen      string
	proxyID     uint32
	resolverID  string
	storeKind   string
	dsn         string
	replicaDSNs []string
	hosts       []string
	logKind     string
	brokers     []string
	security    securityFlags
}

func newServeCmd(g *globals) *cobra.Command {
	var f serveFlags
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run a wail server until SIGINT or SIGTERM",
		Long: "Run a wail server: the proxy, the resolver, the embedded intent log, store and\n" +
			"event bus, and the API (gRPC, gRPC-Web, Connect) on one port. Settings come from\n" +
			"--config (YAML over the defaults); the flags below override it when given.",
		Args: exactArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := f.config(cmd, nil)
			if err != nil {
				return err
			}
			return serve(cmd, g, cfg)
		},
	}
	f.register(cmd, roleServe)
	return cmd
}

// role says which of the serve flags a command offers.
type role int

const (
	roleServe   role = iota // everything
	roleProxy               // no --resolver-id
	roleResolve             // no --proxy-id
	roleDoctor              // neither, and no --listen
)

// newRoleCmd is `wail proxy` or `wail resolve`: serve with one role only,
// for deployments where several processes share a store and a Kafka log.
func newRoleCmd(g *globals, use, short string, r role, apply func(*config.Config)) *cobra.Command {
	var f serveFlags
	cmd := &cobra.Command{
		Use:   use,
		Short: short,
		Long: short + ".\nSettings as for `wail serve`. Several proxies need distinct --proxy-id values;\n" +
			"on Kafka, several resolvers share the intent partitions through the consumer group\n" +
			"resolver.group, each with its own --resolver-id.",
		Args: exactArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := f.config(cmd, apply)
			if err != nil {
				return err
			}
			return serve(cmd, g, cfg)
		},
	}
	f.register(cmd, r)
	return cmd
}

// register adds the flags of serve that the role uses (see role).
func (f *serveFlags) register(cmd *cobra.Command, r role) {
	fl := cmd.Flags()
	fl.StringVar(&f.configFile, "config", "", "YAML configuration `file` (default: built-in defaults)")
	fl.StringVar(&f.dataDir, "data-dir", "", "data directory (overrides data_dir)")
	if r != roleDoctor {
		fl.StringVar(&f.listen, "listen", "", "listen address host:port (overrides listen)")
	}
	if r == roleServe || r == roleProxy {
		fl.Uint32Var(&f.proxyID, "proxy-id", 0, "proxy id 0..1023 (overrides proxy_id)")
	}
	if r == roleServe || r == roleResolve {
		fl.StringVar(&f.resolverID, "resolver-id", "", "resolver instance id in its Kafka group, unique per process (overrides resolver.instance_id)")
	}
	fl.StringVar(&f.storeKind, "store", "", "store kind: pebble, postgres, mysql or cassandra (overrides store.kind)")
	fl.StringVar(&f.dsn, "dsn", "", "primary DSN of a postgres or mysql store (overrides store.dsn)")
	fl.StringArrayVar(&f.replicaDSNs, "replica-dsn", nil, "read replica DSN, cheapest first; repeat for more (overrides store.replica_dsns)")
	fl.StringSliceVar(&f.hosts, "hosts", nil, "Cassandra contact points host[:port][,host[:port]] (overrides store.cassandra.hosts)")
	fl.StringVar(&f.logKind, "log", "", "intent log and event bus: embedded or kafka (overrides log.kind)")
	fl.StringSliceVar(&f.brokers, "brokers", nil, "Kafka bootstrap brokers host:port[,host:port] (overrides log.kafka.brokers)")
	if r != roleDoctor {
		f.security.register(fl)
	}
	// Empty, each meant the file's value or the default: a unit's --config
	// $WAIL_CONFIG with the variable unset ran on the built-in defaults
	// (another data dir, no TLS, no auth).
	for _, name := range []string{"config", "data-dir", "listen", "resolver-id", "store", "dsn", "log",
		"tls-cert", "tls-key", "tls-client-ca", "tls-crl", "tokens-file", "tokens-source"} {
		if fl.Lookup(name) != nil {
			refuseEmpty(fl, name)
		}
	}
}

// config reads the file, applies the flags that were set and then role
// (when not nil: what wail proxy or resolve turns off), and validates the
// result: a flag may give what the file leaves out (a DSN, brokers).
func (f *serveFlags) config(cmd *cobra.Command, role func(*config.Config)) (config.Config, error) {
	cfg, err := config.Read(f.configFile)
	if err != nil {
		return cfg, err
	}
	fl := cmd.Flags()
	if fl.Changed("data-dir") {
		cfg.DataDir = f.dataDir
	}
	if fl.Changed("listen") {
		cfg.Listen = f.listen
	}
	if fl.Changed("proxy-id") {
		cfg.ProxyID = f.proxyID
	}
	if fl.Changed("resolver-id") {
		cfg.Resolver.InstanceID = f.resolverID
	}
	if fl.Changed("store") {
		cfg.Store.Kind = f.storeKind
	}
	if fl.Changed("dsn") {
		cfg.Store.DSN = f.dsn
	}
	if fl.Changed("replica-dsn") {
		cfg.Store.ReplicaDSNs = f.replicaDSNs
	}
	if fl.Changed("hosts") {
		cfg.Store.Cassandra.Hosts = f.hosts
	}
	if fl.Changed("log") {
		cfg.Log.Kind = f.logKind
	}
	if fl.Changed("brokers") {
		cfg.Log.Kafka.Brokers = f.brokers
	}
	f.security.apply(fl, &cfg)
	if role != nil {
		role(&cfg)
	}
	if err := cfg.Validate(); err != nil {
		if f.configFile != "" {
			return cfg, fmt.Errorf("config %s: %w", f.configFile, err)
		}
		return cfg, fmt.Errorf("invalid settings: %w", err)
	}
	return cfg, nil
}

// serve runs the server until the command's context ends.
func serve(cmd *cobra.Command, g *globals, cfg config.Config) error {
	logger := slog.New(slog.NewTextHandler(g.stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	// The address first: New creates the data dir, which a taken port
	// would otherwise leave behind.
	ln, err := server.Listen(cfg.Listen, "listen (--listen)")
	if err != nil {
		return err
	}
	server.TuneMemory(cfg.Memory, g.memoryEnv())
	srv, err := server.New(cfg, logger)
	if err != nil {
		return errors.Join(err, ln.Close())
	}
	dir := cfg.DataDir
	if abs, err := filepath.Abs(dir); err == nil {
		dir = abs
	}
	err = srv.Serve(cmd.Context(), ln, func(addr string) {
		if !strings.Contains(addr, "://") {
			scheme := "http://"
			if cfg.Security.TLS.Enabled() {
				scheme = "https://"
			}
			addr = scheme + addr
		}
		fmt.Fprintf(g.stdout, "wail listening on %s (data dir %s)\n", addr, dir)
		if cfg.Console.Enabled {
			fmt.Fprintf(g.stdout, "wail console at %s/console/\n", addr)
		}
	})
	if errors.Is(err, server.ErrFailStop) { // a supervisor restarts it
		return exitError{code: server.ExitFailStop, msg: err.Error()}
	}
	return err
}

// memoryEnv is the host's, with the command's environment variables.
func (g *globals) memoryEnv() server.MemoryEnv {
	e := server.HostMemoryEnv()
	e.Getenv = g.getenv
	return e
}
