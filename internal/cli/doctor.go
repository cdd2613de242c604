package cli

import (
	"time"

	"github.com/spf13/cobra"

	"github.com/wail-cdc/wail/internal/server"
)

func newDoctorCmd(g *globals) *cobra.Command {
	var f serveFlags
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "doctor",
		Short: "Check a running server's health, the store and the log: reachable, schema and topics in place, replica lag",
		Long: "Check the configuration that `wail serve` would use (same --config and flags):\n" +
			"TLS and auth (the certificate and when it expires, the tokens file, the JWT key set\n" +
			"read as the server would, a listen address that would be refused); the store is reachable, its schema is in place, how far each\n" +
			"read replica lags; on Cassandra, every node answers, agrees on the schema and\n" +
			"runs commitlog_sync batch or group, and every wail table keeps read_repair = 'BLOCKING'\n" +
			"(doctor names the ALTER TABLE that sets it back); the log (Kafka brokers, or the\n" +
			"embedded log in the data dir) is reachable, and every ready table has its intent and\n" +
			"event topics with its partition count. When a server answers\n" +
			"at --addr, print its health (/healthz) first: ok, degraded or unhealthy, with each\n" +
			"condition's reason and what to do; the embedded store and log it holds are skipped.\n" +
			"A server that answers but whose health cannot be read (a certificate not trusted,\n" +
			"TLS on one side only, no answer within --timeout) fails the check; nothing\n" +
			"listening at --addr fails nothing. A --data-dir that does not exist fails, and is\n" +
			"not made (with the embedded store or log); likewise a Cassandra keyspace, or a\n" +
			"PostgreSQL schema or MySQL database without wail's catalog table, fails: doctor\n" +
			"creates nothing in the store (wail serve sets it up at its first start).\n" +
			"Exits with code 1 when a check fails or the server is unhealthy.",
		Args: exactArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if timeout < 0 {
				return usageErrorf("--timeout %s is negative: give a bound, or 0 for the default (%s)", timeout, server.DefaultDoctorTimeout)
			}
			cfg, err := f.config(cmd, nil)
			if err != nil {
				return err
			}
			cl, err := g.clients()
			if err != nil {
				return err
			}
			return server.Doctor(cmd.Context(), cfg, cl.http, cl.url, timeout, g.stdout)
		},
	}
	f.register(cmd, roleDoctor)
	g.addrFlag(cmd.Flags())
	cmd.Flags().DurationVar(&timeout, "timeout", server.DefaultDoctorTimeout, "bound on each check that talks to the store, the log, the registry or the server, each on its own (opening the store, its schema, its catalog, each topic, ...; raise it for a slow or loaded machine or cluster; 0: the default)")
	return cmd
}
