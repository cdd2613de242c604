package cli

import (
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
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
	cmd.AddCommand(newDLQLsCmd(g, true), newDLQShowCmd(g, true), newDLQSettleCmd(g, true, true), newDLQSettleCmd(g, true, false))
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
