package cli

import (
	"github.com/spf13/cobra"

	"github.com/wail-cdc/wail/internal/server"
)

func newDoctorCmd(g *globals) *cobra.Command {
	var f serveFlags
	cmd := &cobra.Command{
		Use:   "doctor",
		Short: "Check that the configured store is reachable, its schema in place, and how far replicas lag",
		Long: "Check the configuration that `wail serve` would use (same --config and flags):\n" +
			"the store is reachable, its schema is in place, and how far each read replica lags.\n" +
			"Exits with code 1 when a check fails.",
		Args: exactArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := f.config(cmd)
			if err != nil {
				return err
			}
			return server.Doctor(cmd.Context(), cfg, g.stdout)
		},
	}
	f.register(cmd)
	return cmd
}
