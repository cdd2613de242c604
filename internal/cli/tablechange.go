package cli

import (
	"context"
	"fmt"

	"connectrpc.com/connect"
	"github.com/spf13/cobra"

	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
	"github.com/wail-cdc/wail/api/wail/v1/wailv1connect"
)

func newTableAlterCmd(g *globals) *cobra.Command {
	var (
		f     tableFlags
		types typeFlags
	)
	cmd := &cobra.Command{
		Use:   "alter NAME",
		Short: "Change a table's failure mode, visibility window, retry bounds, validation or schemas",
		Long: "Change what can change on a live table; the flags given are changed, the rest kept.\n" +
			"Every process sharing the store takes the change up at its next catalog refresh\n" +
			"(catalog_refresh, 2s); a new visibility window applies to intents the resolver reads\n" +
			"from then on. The partition count cannot change: drop and create the table again.",
		Args: exactArgs("NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			req := &wailv1.AlterTableRequest{Name: args[0]}
			fl := cmd.Flags()
			if fl.Changed("failure-mode") {
				fm, err := parseFailureMode(f.mode)
				if err != nil || f.mode == "" {
					return usageErrorf("--failure-mode %q: use transactional or independent", f.mode)
				}
				req.FailureMode = &fm
			}
			if fl.Changed("visibility-window") {
				ms, err := millis("visibility-window", f.window)
				if err != nil {
					return err
				}
				req.VisibilityWindowMs = &ms
			}
			if fl.Changed("max-attempts") {
				req.MaxAttempts = &f.maxAttempts
			}
			if fl.Changed("max-retry-time") {
				ms, err := millis("max-retry-time", f.maxRetryTime)
				if err != nil {
					return err
				}
				req.MaxRetryTimeMs = &ms
			}
			if fl.Changed("validate") {
				skip := !types.validate
				req.SkipValidation = &skip
			}
			var err error
			if req.KeySchema, req.ValueSchema, err = types.schemas(); err != nil {
				return err
			}
			if req.FailureMode == nil && req.VisibilityWindowMs == nil && req.MaxAttempts == nil && req.MaxRetryTimeMs == nil &&
				req.SkipValidation == nil && req.KeySchema == nil && req.ValueSchema == nil {
				return usageErrorf("nothing to alter: give --failure-mode, --visibility-window, --max-attempts, --max-retry-time, --validate, --key-proto or --value-proto")
			}
			return adminCall(cmd, g, false, false, func(ctx context.Context, admin wailv1connect.AdminServiceClient) (*connect.Response[wailv1.AlterTableResponse], error) {
				return admin.AlterTable(ctx, connect.NewRequest(req))
			}, func(resp *wailv1.AlterTableResponse) error {
				what := "altered table"
				if !resp.GetChanged() {
					what = "table unchanged:"
				}
				fmt.Fprintf(g.stdout, "%s %s\n", what, describe(resp.GetTable()))
				return nil
			})
		},
	}
	f.register(cmd, "unchanged when not given")
	types.register(cmd, false)
	return cmd
}

func newTableDropCmd(g *globals) *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use:   "drop NAME",
		Short: "Delete a table: its rows, topics and committed offsets",
		Long: "Delete a table: its rows, its intent, event and dead-letter topics, the resolver's\n" +
			"committed offsets, and its webhook sinks with their dead letters. The table stops taking\n" +
			"writes everywhere first; the drop waits two catalog refreshes and a second, plus the visibility\n" +
			"window so that no write is in flight, and\n" +
			"refuses (failed_precondition) while intents are unresolved or writes arrived meanwhile:\n" +
			"then stop the writers, wait until `wail table describe NAME` shows lag 0, and run it\n" +
			"again, or give --force (the unresolved intents get no events). A drop that stopped\n" +
			"half way is finished by running it again. Not bounded by --timeout unless given (the\n" +
			"server finishes a drop it began even when the client stops waiting).",
		Args: exactArgs("NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			req := &wailv1.DropTableRequest{Name: args[0], Force: force}
			return adminCall(cmd, g, true, false, func(ctx context.Context, admin wailv1connect.AdminServiceClient) (*connect.Response[wailv1.DropTableResponse], error) {
				return admin.DropTable(ctx, connect.NewRequest(req))
			}, func(*wailv1.DropTableResponse) error {
				fmt.Fprintf(g.stdout, "dropped table %s\n", args[0])
				return nil
			})
		},
	}
	cmd.Flags().BoolVar(&force, "force", false, "drop even while intents are unresolved or writes are in flight (their events are lost)")
	return cmd
}
