package cli

import (
	"context"
	"fmt"
	"io"
	"strings"

	"connectrpc.com/connect"
	"github.com/spf13/cobra"

	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
	"github.com/wail-cdc/wail/api/wail/v1/wailv1connect"
)

// wail sink dlq: a webhook sink's dead letters, through the dead-letter
// calls of AdminService with sink set (the table's `wail dlq` is dlq.go).

// maxValueShown is how much of a letter's event value show prints.
const maxValueShown = 200

func newSinkDLQCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "dlq",
		Short: "Inspect, redrive and drop the events a sink gave up on",
		Long: "A sink's dead letters are the events it gave up on (retries ran out, or the\n" +
			"endpoint refused the batch), one letter per event, with the last answer's status\n" +
			"and body excerpt. ls and show inspect them; redrive POSTs them again to the\n" +
			"endpoint, in per-key order (a letter whose key has a newer event on the bus is\n" +
			"settled superseded instead: sending it would go back in time); drop discards them.",
		Args: cobra.ArbitraryArgs,
		RunE: groupRunE,
	}
	cmd.AddCommand(newDLQLsCmd(g, true), newDLQShowCmd(g, true), newSinkDLQSettleCmd(g, true), newSinkDLQSettleCmd(g, false))
	return cmd
}

// printSinkLetter prints what a SINK letter adds: the sink, the event and
// the last answer.
func printSinkLetter(w io.Writer, l *wailv1.DeadLetter) {
	ev := l.GetEvent()
	fmt.Fprintf(w, "Sink:\t%s\n", l.GetSink())
	if off := l.GetEventOffset(); off >= 0 {
		fmt.Fprintf(w, "Bus offset:\t%d (partition %d)\n", off, l.GetPartition())
	} else {
		fmt.Fprintln(w, "Bus offset:\t- (a row of the sink's snapshot)")
	}
	fmt.Fprintf(w, "Event:\t%s v%d, id %s\n", strings.TrimPrefix(ev.GetOp().String(), "OP_"), ev.GetVersion(), oneLine(ev.GetEventId(), 0))
	switch {
	case l.GetEventStripped():
		fmt.Fprintln(w, "Value:\t(too large to keep in the letter: redrive reads it from the bus)")
	case ev.GetValue() != nil:
		fmt.Fprintf(w, "Value:\t%s (--json shows all)\n", displayBytes(ev.GetValue(), maxValueShown))
	}
	status := "none (a timeout or a connection error)"
	if s := l.GetHttpStatus(); s != 0 {
		status = fmt.Sprint(s)
	}
	fmt.Fprintf(w, "HTTP status:\t%s\n", status)
}

func newSinkDLQSettleCmd(g *globals, redrive bool) *cobra.Command {
	var all, asJSON bool
	use, short, long := "drop TABLE SINK [OFFSET...] [--all]", "Discard a sink's dead letters (their events are not sent)",
		"Drop settles dead letters without sending their events. A letter a redrive is\n"+
			"sending, or settled after the drop read it, is not dropped: the drop fails\n"+
			"(aborted) naming it and what happened to it; the others are dropped."
	if redrive {
		use, short = "redrive TABLE SINK [OFFSET...] [--all]", "POST a sink's dead letters again to its endpoint, in per-key order"
		long = "Redrive sends each letter's event again to the sink's endpoint, through the sink\n" +
			"(it must run in the server you ask, and not be paused), one attempt each, while the\n" +
			"sink holds back the letter's partition. A letter whose key has a newer event on the\n" +
			"bus after it (delivered, to be delivered, or in a newer letter) is settled\n" +
			"superseded and not sent: events carry a key's whole state, and the older one would\n" +
			"arrive after the newer. A letter already settled is not sent again. On an answer\n" +
			"other than 2xx the redrive stops; that letter stays unsettled. A letter dropped after\n" +
			"the redrive read it is not sent (the redrive fails, aborted, naming it). It waits for a request\n" +
			"in flight on the letter's partition (a retrying one may take its --max-retry);\n" +
			"not bounded by --timeout unless given."
	}
	cmd := &cobra.Command{
		Use:   use,
		Short: short,
		Long:  long,
		Args:  cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			_, offs, err := selection(cmd, args, 2, all)
			if err != nil {
				return err
			}
			print := func(res []*wailv1.DeadLetterResolution) error {
				printResolutions(g.stdout, res, true)
				return nil
			}
			if redrive {
				req := &wailv1.RedriveDeadLettersRequest{Table: args[0], Sink: args[1], Offsets: offs, All: all}
				return adminCall(cmd, g, true, asJSON, func(ctx context.Context, a wailv1connect.AdminServiceClient) (*connect.Response[wailv1.RedriveDeadLettersResponse], error) {
					return a.RedriveDeadLetters(ctx, connect.NewRequest(req))
				}, func(m *wailv1.RedriveDeadLettersResponse) error { return print(m.GetResolutions()) })
			}
			req := &wailv1.DropDeadLettersRequest{Table: args[0], Sink: args[1], Offsets: offs, All: all}
			return adminCall(cmd, g, false, asJSON, func(ctx context.Context, a wailv1connect.AdminServiceClient) (*connect.Response[wailv1.DropDeadLettersResponse], error) {
				return a.DropDeadLetters(ctx, connect.NewRequest(req))
			}, func(m *wailv1.DropDeadLettersResponse) error { return print(m.GetResolutions()) })
		},
	}
	what := "drop"
	if redrive {
		what = "redrive"
	}
	cmd.Flags().BoolVar(&all, "all", false, what+" every unsettled dead letter of the sink")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the response as JSON")
	return cmd
}
