package cli

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"connectrpc.com/connect"
	"github.com/spf13/cobra"

	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
	"github.com/wail-cdc/wail/api/wail/v1/wailv1connect"
)

func newSinkCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "sink",
		Short: "Create and manage webhook sinks (wail POSTs a table's events to an HTTP endpoint)",
		Long: "A webhook sink POSTs a table's events in batches (JSON, or Protobuf) to a URL, in\n" +
			"per-key order, signed with HMAC-SHA256 when it has a secret. Failed requests (5xx,\n" +
			"timeouts, connection errors) are retried with exponential backoff within the sink's\n" +
			"bounds, then the batch goes to the sink's dead-letter topic. A sink is a consumer\n" +
			"group member underneath (group sink.NAME): its position is committed once the\n" +
			"endpoint answers 2xx, so it survives restarts; see README, \"Consume events\".",
		Args: cobra.ArbitraryArgs,
		RunE: groupRunE,
	}
	g.clientFlags(cmd.PersistentFlags())
	cmd.AddCommand(newSinkCreateCmd(g), newSinkLsCmd(g), newSinkDescribeCmd(g), newSinkPauseCmd(g, true), newSinkPauseCmd(g, false), newSinkDropCmd(g), newSinkDLQCmd(g))
	return cmd
}

func newSinkCreateCmd(g *globals) *cobra.Command {
	var (
		def                           wailv1.Sink
		secretEnv                     string
		timeout, maxRetry, bmin, bmax time.Duration
	)
	cmd := &cobra.Command{
		Use:   "create TABLE NAME --webhook URL",
		Short: "Create a webhook sink of a table",
		Long: "Create a webhook sink of a table. Its durations (--request-timeout, --max-retry,\n" +
			"--backoff-min, --backoff-max) are kept in whole milliseconds: another is refused.",
		Args: exactArgs("TABLE", "NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if def.Url == "" {
				return usageErrorf("--webhook is required: the URL wail POSTs events to")
			}
			if secretEnv != "" {
				if def.Secret != "" {
					return usageErrorf("--secret and --secret-env: use one")
				}
				def.Secret = g.getenv(secretEnv)
				if def.Secret == "" {
					return usageErrorf("--secret-env %s: the environment variable is empty or not set", secretEnv)
				}
			}
			def.Name = args[1]
			for _, d := range []struct {
				name string
				d    time.Duration
				ms   *int64
			}{{"request-timeout", timeout, &def.TimeoutMs}, {"max-retry", maxRetry, &def.MaxRetryMs},
				{"backoff-min", bmin, &def.BackoffMinMs}, {"backoff-max", bmax, &def.BackoffMaxMs}} {
				ms, err := millis(d.name, d.d)
				if err != nil {
					return err
				}
				*d.ms = ms
			}
			return adminCall(cmd, g, false, false, func(ctx context.Context, c wailv1connect.AdminServiceClient) (*connect.Response[wailv1.CreateSinkResponse], error) {
				return c.CreateSink(ctx, connect.NewRequest(&wailv1.CreateSinkRequest{Table: args[0], Sink: &def}))
			}, func(m *wailv1.CreateSinkResponse) error {
				what := "created"
				if !m.Created {
					what = "exists (same definition)"
				}
				if m.Resumed {
					_, err := fmt.Fprintf(g.stdout, "sink %s of %s %s: %s, %s; it resumes group sink.%s's committed position, kept from a sink of this name dropped before (--start %s is not applied); %s\n",
						m.Sink.Name, m.Sink.Table, what, m.Sink.Url, m.Sink.Format, m.Sink.Name, m.Sink.Start, startOver(m.Sink))
					return err
				}
				_, err := fmt.Fprintf(g.stdout, "sink %s of %s %s: %s, %s, starting at %s\n", m.Sink.Name, m.Sink.Table, what, m.Sink.Url, m.Sink.Format, m.Sink.Start)
				return err
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&def.Url, "webhook", "", "the URL to POST events to (http or https; loopback and private addresses are allowed: who may create sinks may reach what the server reaches)")
	f.StringVar(&def.Secret, "secret", "", "sign each request with HMAC-SHA256 of this secret (header Wail-Signature; prefer --secret-env, command lines are visible)")
	f.StringVar(&secretEnv, "secret-env", "", "read the secret from this environment variable")
	f.StringVar(&def.Format, "format", "json", "body format: json or protobuf (a wail.v1.SinkBatch)")
	f.StringVar(&def.Start, "start", "latest", "where the sink starts: latest (events after the create), beginning (every retained event) or snapshot (every key's current state, then the changes)")
	f.Int32Var(&def.MaxBatchEvents, "max-batch", 100, "the most events per request (1..10000)")
	f.DurationVar(&timeout, "request-timeout", 10*time.Second, "bound on one request, sending and answer")
	f.Int32Var(&def.MaxAttempts, "max-attempts", 0, "attempts of a batch before it is dead-lettered (0: bounded by --max-retry only)")
	f.DurationVar(&maxRetry, "max-retry", 15*time.Minute, "time from a batch's first attempt after which it is dead-lettered")
	f.DurationVar(&bmin, "backoff-min", 200*time.Millisecond, "first wait before a retry (doubles, with jitter)")
	f.DurationVar(&bmax, "backoff-max", 30*time.Second, "longest wait before a retry")
	f.Int32Var(&def.PartitionsInFlight, "partitions-in-flight", 4, "how many partitions' requests are in flight at once (1..256; each partition's go in order)")
	refuseEmpty(f, "format", "start", "secret")
	return cmd
}

func newSinkLsCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:     "ls TABLE",
		Aliases: []string{"list"},
		Short:   "List a table's sinks with their state, deliveries and lag",
		Args:    exactArgs("TABLE"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return adminCall(cmd, g, false, false, func(ctx context.Context, c wailv1connect.AdminServiceClient) (*connect.Response[wailv1.ListSinksResponse], error) {
				return c.ListSinks(ctx, connect.NewRequest(&wailv1.ListSinksRequest{Table: args[0]}))
			}, func(m *wailv1.ListSinksResponse) error {
				tw := tabwriter.NewWriter(g.stdout, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "NAME\tSTATE\tDELIVERED\tRETRIES\tDEAD-LETTERED\tLAG\tURL")
				for _, s := range m.Sinks {
					fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%d\t%s\n", s.Sink.Name, s.State, s.DeliveredEvents, s.Retries, s.DeadLetteredEvents, s.Lag, s.Sink.Url)
				}
				return tw.Flush()
			})
		},
	}
}

func newSinkDescribeCmd(g *globals) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "describe TABLE NAME",
		Short: "Show a sink's definition, state, counters, last error and each partition's lag",
		Args:  exactArgs("TABLE", "NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return adminCall(cmd, g, false, asJSON, func(ctx context.Context, c wailv1connect.AdminServiceClient) (*connect.Response[wailv1.DescribeSinkResponse], error) {
				return c.DescribeSink(ctx, connect.NewRequest(&wailv1.DescribeSinkRequest{Table: args[0], Name: args[1]}))
			}, func(m *wailv1.DescribeSinkResponse) error { return printSink(g.stdout, m.Status) })
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the response as JSON")
	return cmd
}

func printSink(w io.Writer, st *wailv1.SinkStatus) error {
	s := st.Sink
	secret := "none"
	if s.HasSecret {
		secret = "set (HMAC-SHA256, header Wail-Signature)"
	}
	attempts := "no bound"
	if s.MaxAttempts > 0 {
		attempts = fmt.Sprint(s.MaxAttempts)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "sink:            %s of %s (group sink.%s)\n", s.Name, s.Table, s.Name)
	fmt.Fprintf(&b, "url:             %s\nformat:          %s\nsecret:          %s\n", s.Url, s.Format, secret)
	fmt.Fprintf(&b, "state:           %s\n", st.State)
	fmt.Fprintf(&b, "batches:         up to %d events, request timeout %s\n", s.MaxBatchEvents, time.Duration(s.TimeoutMs)*time.Millisecond)
	fmt.Fprintf(&b, "retries:         backoff %s..%s, attempts %s, for at most %s, then %s\n",
		time.Duration(s.BackoffMinMs)*time.Millisecond, time.Duration(s.BackoffMaxMs)*time.Millisecond, attempts,
		time.Duration(s.MaxRetryMs)*time.Millisecond, st.DeadLetterTopic)
	fmt.Fprintf(&b, "delivered:       %d events in %d requests (since the server started)\n", st.DeliveredEvents, st.DeliveredBatches)
	fmt.Fprintf(&b, "retried:         %d\ndead-lettered:   %d events\n", st.Retries, st.DeadLetteredEvents)
	if st.LastError != "" {
		fmt.Fprintf(&b, "last error:      %s (%s)\n", oneLine(st.LastError, 0), time.UnixMilli(st.LastErrorAtMs).UTC().Format(time.RFC3339))
	}
	if _, err := io.WriteString(w, b.String()); err != nil {
		return err
	}
	return printGroupPartitions(w, st.Partitions)
}

func newSinkPauseCmd(g *globals, pause bool) *cobra.Command {
	use, short := "resume TABLE NAME", "Resume a paused sink from its committed position"
	if pause {
		use, short = "pause TABLE NAME", "Pause a sink (its position stays committed; nothing is lost)"
	}
	return &cobra.Command{
		Use:   use,
		Short: short,
		Args:  exactArgs("TABLE", "NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			var name string
			err := adminCall(cmd, g, false, false, func(ctx context.Context, c wailv1connect.AdminServiceClient) (*connect.Response[wailv1.Sink], error) {
				if pause {
					r, err := c.PauseSink(ctx, connect.NewRequest(&wailv1.PauseSinkRequest{Table: args[0], Name: args[1]}))
					if err != nil {
						return nil, err
					}
					return connect.NewResponse(r.Msg.Sink), nil
				}
				r, err := c.ResumeSink(ctx, connect.NewRequest(&wailv1.ResumeSinkRequest{Table: args[0], Name: args[1]}))
				if err != nil {
					return nil, err
				}
				return connect.NewResponse(r.Msg.Sink), nil
			}, func(s *wailv1.Sink) error { name = s.Name; return nil })
			if err != nil {
				return err
			}
			state := "resumed"
			if pause {
				state = "paused"
			}
			_, err = fmt.Fprintf(g.stdout, "sink %s of %s %s\n", name, args[0], state)
			return err
		},
	}
}

// startOver says how a sink created again, which resumed its group's
// positions, starts where its start says instead.
func startOver(s *wailv1.Sink) string {
	if s.Start == "snapshot" {
		return "a snapshot is taken only by a group without positions: to take one, create the sink under another name"
	}
	return fmt.Sprintf("to start at %s: wail sink pause %s %s; wail group reset %s sink.%s --to %s; wail sink resume %s %s",
		s.Start, s.Table, s.Name, s.Table, s.Name, s.Start, s.Table, s.Name)
}

func newSinkDropCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "drop TABLE NAME",
		Short: "Stop a sink and remove its definition (its committed position and dead letters stay)",
		Args:  exactArgs("TABLE", "NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return adminCall(cmd, g, false, false, func(ctx context.Context, c wailv1connect.AdminServiceClient) (*connect.Response[wailv1.DropSinkResponse], error) {
				return c.DropSink(ctx, connect.NewRequest(&wailv1.DropSinkRequest{Table: args[0], Name: args[1]}))
			}, func(*wailv1.DropSinkResponse) error {
				_, err := fmt.Fprintf(g.stdout, "sink %s of %s dropped\n", args[1], args[0])
				return err
			})
		},
	}
}
