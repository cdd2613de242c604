package cli

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"connectrpc.com/connect"
	"github.com/spf13/cobra"
	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
)

func newTableCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "table",
		Short: "Create, list, describe, alter, drop and reconcile tables",
		Args:  cobra.ArbitraryArgs,
		RunE:  groupRunE,
	}
	g.clientFlags(cmd.PersistentFlags())
	cmd.AddCommand(newTableCreateCmd(g), newTableLsCmd(g), newTableDescribeCmd(g), newTableAlterCmd(g), newTableDropCmd(g),
		newTableReconcileCmd(g))
	return cmd
}

func newTableCreateCmd(g *globals) *cobra.Command {
	var (
		f          tableFlags
		types      typeFlags
		partitions int32
	)
	cmd := &cobra.Command{
		Use:   "create NAME",
		Short: "Create a table (no-op when an identical table exists)",
		Long: "Create a table: its topics and store room, atomically for every process sharing the\n" +
			"store. Settings left out take the server's table_defaults. The same definition again\n" +
			"is not an error; another one is (already_exists, naming the saved definition).",
		Args: exactArgs("NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			fm, err := parseFailureMode(f.mode)
			if err != nil {
				return err
			}
			if f.window < 0 || partitions < 0 || f.maxAttempts < 0 || f.maxRetryTime < 0 {
				return usageErrorf("--visibility-window, --partitions, --max-attempts and --max-retry-time must not be negative")
			}
			window, err := millis("visibility-window", f.window)
			if err != nil {
				return err
			}
			retryTime, err := millis("max-retry-time", f.maxRetryTime)
			if err != nil {
				return err
			}
			req := &wailv1.CreateTableRequest{Name: args[0], FailureMode: fm,
				VisibilityWindowMs: window, Partitions: partitions,
				MaxAttempts: f.maxAttempts, MaxRetryTimeMs: retryTime, SkipValidation: !types.validate}
			if req.KeySchema, req.ValueSchema, err = types.schemas(); err != nil {
				return err
			}
			return createTable(cmd, g, req)
		},
	}
	f.register(cmd, "0: server default")
	types.register(cmd, true)
	cmd.Flags().Int32Var(&partitions, "partitions", 0, "number of partitions; cannot change later (0: server default)")
	return cmd
}

// tableFlags are the settings create and alter share.
type tableFlags struct {
	window       time.Duration
	mode         string
	maxAttempts  int32
	maxRetryTime time.Duration
}

func (f *tableFlags) register(cmd *cobra.Command, zero string) {
	fl := cmd.Flags()
	fl.DurationVar(&f.window, "visibility-window", 0, "how long the resolver waits for the store to show an intent, e.g. 10s, in whole milliseconds ("+zero+")")
	fl.StringVar(&f.mode, "failure-mode", "", "transactional or independent ("+zero+")")
	fl.Int32Var(&f.maxAttempts, "max-attempts", 0, "tries of a key's read or publish before its intents are dead-lettered ("+zero+")")
	fl.DurationVar(&f.maxRetryTime, "max-retry-time", 0, "time from a key's first failed try until its intents are dead-lettered, in whole milliseconds ("+zero+")")
}

func createTable(cmd *cobra.Command, g *globals, req *wailv1.CreateTableRequest) error {
	cl, err := g.clients()
	if err != nil {
		return err
	}
	ctx, cancel := g.unary(cmd.Context())
	defer cancel()
	resp, err := cl.admin.CreateTable(ctx, connect.NewRequest(req))
	if err != nil {
		return err
	}
	t := resp.Msg.GetTable()
	what := "created table"
	if !resp.Msg.GetCreated() {
		what = "table already exists:"
	}
	fmt.Fprintf(g.stdout, "%s %s\n", what, describe(t))
	return nil
}

// describe prints a definition on one line.
func describe(t *wailv1.Table) string {
	return fmt.Sprintf("%s (failure mode %s, window %s, %d partitions, max attempts %d, max retry time %s%s)",
		t.GetName(), failureModeName(t.GetFailureMode()), windowOf(t), t.GetPartitions(), t.GetMaxAttempts(), retryTimeOf(t), typesOf(t))
}

func newTableLsCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:     "ls",
		Aliases: []string{"list"},
		Short:   "List tables",
		Args:    exactArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			cl, err := g.clients()
			if err != nil {
				return err
			}
			ctx, cancel := g.unary(cmd.Context())
			defer cancel()
			resp, err := cl.admin.ListTables(ctx, connect.NewRequest(&wailv1.ListTablesRequest{}))
			if err != nil {
				return err
			}
			tables := slices.Clone(resp.Msg.GetTables())
			slices.SortFunc(tables, func(a, b *wailv1.Table) int { return cmp.Compare(a.GetName(), b.GetName()) })
			tw := tabwriter.NewWriter(g.stdout, 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tFAILURE MODE\tWINDOW\tPARTITIONS\tSTATE")
			for _, t := range tables {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\n", t.GetName(), failureModeName(t.GetFailureMode()), windowOf(t), t.GetPartitions(), stateName(t.GetState()))
			}
			return tw.Flush()
		},
	}
}

func newTableDescribeCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "describe NAME",
		Short: "Show a table and its per-partition offsets and resolver lag",
		Args:  exactArgs("NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := g.clients()
			if err != nil {
				return err
			}
			ctx, cancel := g.unary(cmd.Context())
			defer cancel()
			resp, err := cl.admin.DescribeTable(ctx, connect.NewRequest(&wailv1.DescribeTableRequest{Name: args[0]}))
			if err != nil {
				return err
			}
			return printDescription(g, resp.Msg)
		},
	}
}

// printDescription prints the table settings, then one row per partition:
// lag is intent end offset minus committed offset (intents the resolver has
// not committed yet).
func printDescription(g *globals, d *wailv1.DescribeTableResponse) error {
	t := d.GetTable()
	tw := tabwriter.NewWriter(g.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "Name:\t%s\n", t.GetName())
	fmt.Fprintf(tw, "Failure mode:\t%s\n", failureModeName(t.GetFailureMode()))
	fmt.Fprintf(tw, "Visibility window:\t%s\n", windowOf(t))
	fmt.Fprintf(tw, "Partitions:\t%d\n", t.GetPartitions())
	fmt.Fprintf(tw, "Max attempts:\t%d\n", t.GetMaxAttempts())
	fmt.Fprintf(tw, "Max retry time:\t%s\n", retryTimeOf(t))
	fmt.Fprintf(tw, "State:\t%s\n", stateName(t.GetState()))
	if us := t.GetCreatedAtUs(); us > 0 {
		fmt.Fprintf(tw, "Created:\t%s\n", time.UnixMicro(us).UTC().Format(time.RFC3339))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(g.stdout)
	intent, committed, events := d.GetIntentEndOffsets(), d.GetCommittedOffsets(), d.GetEventEndOffsets()
	n := max(len(intent), len(committed), len(events))
	at := func(s []int64, i int) (int64, bool) {
		if i < len(s) {
			return s[i], true
		}
		return 0, false
	}
	show := func(v int64, ok bool) string {
		if !ok {
			return "-"
		}
		return fmt.Sprint(v)
	}
	tw = tabwriter.NewWriter(g.stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "PARTITION\tINTENT END\tCOMMITTED\tLAG\tEVENT END\t")
	var sumI, sumC, sumL, sumE int64
	for i := range n {
		iv, iok := at(intent, i)
		cv, cok := at(committed, i)
		ev, eok := at(events, i)
		lag, lok := iv-cv, iok && cok
		sumI, sumC, sumE = sumI+iv, sumC+cv, sumE+ev
		if lok {
			sumL += lag
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t\n", i, show(iv, iok), show(cv, cok), show(lag, lok), show(ev, eok))
	}
	fmt.Fprintf(tw, "total\t%d\t%d\t%d\t%d\t\n", sumI, sumC, sumL, sumE)
	return tw.Flush()
}

// parseFailureMode accepts "", "transactional" and "independent".
func parseFailureMode(s string) (wailv1.FailureMode, error) {
	switch strings.ToLower(s) {
	case "":
		return wailv1.FailureMode_FAILURE_MODE_UNSPECIFIED, nil
	case "transactional":
		return wailv1.FailureMode_FAILURE_MODE_TRANSACTIONAL, nil
	case "independent":
		return wailv1.FailureMode_FAILURE_MODE_INDEPENDENT, nil
	}
	return 0, usageErrorf("--failure-mode %q: use transactional or independent", s)
}

func failureModeName(m wailv1.FailureMode) string {
	if m == wailv1.FailureMode_FAILURE_MODE_UNSPECIFIED {
		return "-"
	}
	return strings.ToLower(strings.TrimPrefix(m.String(), "FAILURE_MODE_"))
}

func windowOf(t *wailv1.Table) time.Duration {
	return time.Duration(t.GetVisibilityWindowMs()) * time.Millisecond
}

func retryTimeOf(t *wailv1.Table) time.Duration {
	return time.Duration(t.GetMaxRetryTimeMs()) * time.Millisecond
}

func stateName(s wailv1.TableState) string {
	if s == wailv1.TableState_TABLE_STATE_UNSPECIFIED {
		return "ready"
	}
	return strings.ToLower(strings.TrimPrefix(s.String(), "TABLE_STATE_"))
}

// millis is the duration of flag --name in the whole milliseconds the
// server keeps: a negative one, or one not whole milliseconds, is a usage
// error. Cut to milliseconds, 500us became 0 (the server default, or a
// refusal naming 0ms) and 10.5ms became 10ms, unsaid.
func millis(name string, d time.Duration) (int64, error) {
	switch {
	case d < 0:
		return 0, usageErrorf("--%s %s must not be negative", name, d)
	case d%time.Millisecond != 0:
		return 0, usageErrorf("--%s %s: give whole milliseconds (e.g. %s): the server keeps milliseconds", name, d, (d + time.Millisecond - 1).Truncate(time.Millisecond))
	}
	return d.Milliseconds(), nil
}
