package cli

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"

	"connectrpc.com/connect"
	"github.com/spf13/cobra"

	"google.golang.org/protobuf/proto"

	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
	"github.com/wail-cdc/wail/api/wail/v1/wailv1connect"
)

// errorLimit is how much of a dead letter's error ls prints.
const errorLimit = 60

func newDLQCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "dlq",
		Short: "Inspect, redrive and drop a table's dead letters",
		Long: "A table's dead-letter queue holds the intents the resolver settled without an event\n" +
			"(a publish or read that kept failing) and the retention gaps of its intent log.\n" +
			"ls and show inspect it; redrive resolves the keys again from the store's current\n" +
			"state; drop discards dead letters without an event.",
		Args: cobra.ArbitraryArgs,
		RunE: groupRunE,
	}
	g.clientFlags(cmd.PersistentFlags())
	cmd.AddCommand(newDLQLsCmd(g, false), newDLQShowCmd(g, false), newDLQSettleCmd(g, false, true), newDLQSettleCmd(g, false, false))
	return cmd
}

// adminCall runs one AdminService request for --addr and prints its
// response, as JSON with asJSON, else with print. The request is bounded
// by --timeout; a long one (redrive, reconcile) only when --timeout was
// given.
func adminCall[T any](cmd *cobra.Command, g *globals, long, asJSON bool,
	call func(context.Context, wailv1connect.AdminServiceClient) (*connect.Response[T], error), print func(*T) error) error {
	cl, err := g.clients()
	if err != nil {
		return err
	}
	ctx, cancel := g.unary(cmd.Context())
	if f := cmd.Flag("timeout"); long && (f == nil || !f.Changed) {
		cancel()
		ctx, cancel = context.WithCancel(cmd.Context())
	}
	defer cancel()
	resp, err := call(ctx, cl.admin)
	if err != nil {
		return err
	}
	if m, ok := any(resp.Msg).(proto.Message); ok && asJSON {
		return writeProtoJSON(g.stdout, m)
	}
	return print(resp.Msg)
}

// queueArgs names the queue of a command's first arguments: TABLE, or
// TABLE SINK for a sink's letters (ofSink).
func queueArgs(args []string, ofSink bool) letterQueue {
	q := letterQueue{table: args[0]}
	if ofSink {
		q.sink = args[1]
	}
	return q
}

// newDLQLsCmd is `wail dlq ls TABLE`, or with ofSink `wail sink dlq ls
// TABLE SINK`.
func newDLQLsCmd(g *globals, ofSink bool) *cobra.Command {
	var (
		settled, asJSON bool
		limit           int32
		after           int64
	)
	use, short, args := "ls TABLE", "List dead letters (unsettled ones unless --include-settled)", exactArgs("TABLE")
	if ofSink {
		use, short, args = "ls TABLE SINK", "List a sink's dead letters (unsettled ones unless --include-settled)", exactArgs("TABLE", "SINK")
	}
	cmd := &cobra.Command{
		Use:     use,
		Aliases: []string{"list"},
		Short:   short,
		Args:    args,
		RunE: func(cmd *cobra.Command, args []string) error {
			if limit < 0 || after < -1 {
				return usageErrorf("--limit must be 0 or more and --after -1 or more")
			}
			q := queueArgs(args, ofSink)
			req := &wailv1.ListDeadLettersRequest{Table: q.table, Sink: q.sink, IncludeSettled: settled, Limit: limit}
			if cmd.Flag("after").Changed {
				req.AfterOffset = &after
			}
			return adminCall(cmd, g, false, asJSON, func(ctx context.Context, a wailv1connect.AdminServiceClient) (*connect.Response[wailv1.ListDeadLettersResponse], error) {
				return a.ListDeadLetters(ctx, connect.NewRequest(req))
			}, func(m *wailv1.ListDeadLettersResponse) error {
				return printLetters(g.stdout, q, m)
			})
		},
	}
	fl := cmd.Flags()
	fl.BoolVar(&settled, "include-settled", false, "list settled (redriven, dropped, superseded) dead letters too")
	fl.Int32Var(&limit, "limit", 0, "at most this many (0: the server default, 100; at most 1000)")
	fl.Int64Var(&after, "after", -1, "only dead letters at offsets above this one (the last offset of the previous page)")
	fl.BoolVar(&asJSON, "json", false, "print the response as JSON")
	return cmd
}

// letterQueue names a dead-letter queue: a table's, or a sink's of the
// table.
type letterQueue struct{ table, sink string }

// command is the wail command line of sub on the queue ("wail dlq ls
// orders", "wail sink dlq ls orders billing").
func (q letterQueue) command(sub string) string {
	if q.sink != "" {
		return "wail sink dlq " + sub + " " + q.table + " " + q.sink
	}
	return "wail dlq " + sub + " " + q.table
}

func (q letterQueue) String() string {
	if q.sink != "" {
		return "sink " + q.sink + " of table " + q.table
	}
	return "table " + q.table
}

func printLetters(w io.Writer, q letterQueue, m *wailv1.ListDeadLettersResponse) error {
	if len(m.GetEntries()) == 0 {
		fmt.Fprintf(w, "no dead letters in %s\n", q)
		return nil
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "OFFSET\tKIND\tPARTITION\tKEY\tVERSIONS\tATTEMPTS\tDEAD AT\tSTATE\tERROR")
	for _, e := range m.GetEntries() {
		l := e.GetLetter()
		fmt.Fprintf(tw, "%d\t%s\t%d\t%s\t%s\t%d\t%s\t%s\t%s\n", e.GetOffset(), kindName(l), l.GetPartition(),
			letterKey(l), versions(l), l.GetAttempts(), timeUs(l.GetDeadAtUs()), stateOf(e), oneLine(l.GetError(), errorLimit))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if m.GetMore() {
		last := m.GetEntries()[len(m.GetEntries())-1].GetOffset()
		fmt.Fprintf(w, "more: %s --after %d\n", q.command("ls"), last)
	}
	return nil
}

func kindName(l *wailv1.DeadLetter) string {
	k := strings.ToLower(strings.TrimPrefix(l.GetKind().String(), "DEAD_LETTER_KIND_"))
	if l.GetPermanent() {
		k += " (permanent)"
	}
	return k
}

// letterKey is the key of a letter, or the lost offsets of a gap.
func letterKey(l *wailv1.DeadLetter) string {
	if l.GetKind() == wailv1.DeadLetterKind_DEAD_LETTER_KIND_GAP {
		return fmt.Sprintf("intents [%d, %d)", l.GetGapStartOffset(), l.GetGapEndOffset())
	}
	return displayBytes(l.GetKey(), 40)
}

// versions summarizes the versions of a letter's intents.
func versions(l *wailv1.DeadLetter) string {
	in := l.GetIntents()
	switch {
	case l.GetKind() == wailv1.DeadLetterKind_DEAD_LETTER_KIND_SINK:
		return strconv.FormatUint(l.GetEvent().GetVersion(), 10) // the event the sink gave up on
	case len(in) == 0 && l.GetSnapshotVersion() != 0:
		return strconv.FormatUint(l.GetSnapshotVersion(), 10) // the row a snapshot read
	case len(in) == 0:
		return "-"
	case len(in) == 1:
		return strconv.FormatUint(in[0].GetVersion(), 10)
	}
	return fmt.Sprintf("%d..%d (%d intents)", in[0].GetVersion(), in[len(in)-1].GetVersion(), len(in))
}

// stateOf says whether a letter is settled, and how, or held by a
// redrive.
func stateOf(e *wailv1.DeadLetterEntry) string {
	r := e.GetResolution()
	switch {
	case r == nil && e.GetClaim() != nil:
		return "redriving"
	case r == nil:
		return "unsettled"
	case r.GetAction() == wailv1.DeadLetterAction_DEAD_LETTER_ACTION_DROPPED:
		return "dropped"
	case r.GetAction() == wailv1.DeadLetterAction_DEAD_LETTER_ACTION_SUPERSEDED:
		return fmt.Sprintf("superseded (v%d at bus offset %d)", r.GetSupersededByVersion(), r.GetSupersededByOffset())
	case r.GetRedriveVersion() == 0:
		return "redriven (nothing to publish)"
	}
	return fmt.Sprintf("redriven (intent v%d)", r.GetRedriveVersion())
}

func timeUs(us int64) string {
	if us <= 0 {
		return "-"
	}
	return time.UnixMicro(us).UTC().Format(time.RFC3339Nano)
}

// oneLine flattens s to one line of at most limit characters, printable
// ones: other control and format characters (an escape sequence, a bidi
// override, in what an endpoint or a resolver wrote) show as '?'.
func oneLine(s string, limit int) string {
	s = strings.Join(strings.Fields(s), " ")
	s = strings.Map(func(r rune) rune {
		if r != ' ' && !unicode.IsPrint(r) {
			return '?'
		}
		return r
	}, strings.ToValidUTF8(s, "?"))
	if r := []rune(s); limit > 0 && len(r) > limit {
		s = string(r[:limit]) + "..."
	}
	if s == "" {
		return "-"
	}
	return s
}

// newDLQShowCmd is `wail dlq show TABLE OFFSET`, or with ofSink `wail
// sink dlq show TABLE SINK OFFSET`.
func newDLQShowCmd(g *globals, ofSink bool) *cobra.Command {
	var asJSON bool
	use, short, args := "show TABLE OFFSET", "Show one dead letter in full: its intents, error, attempts, times and state", exactArgs("TABLE", "OFFSET")
	if ofSink {
		use, short, args = "show TABLE SINK OFFSET", "Show one of a sink's dead letters: the event, the error, the attempts, its state",
			exactArgs("TABLE", "SINK", "OFFSET")
	}
	cmd := &cobra.Command{
		Use:   use,
		Short: short,
		Args:  args,
		RunE: func(cmd *cobra.Command, args []string) error {
			offs, err := parseOffsets(args[len(args)-1:])
			if err != nil {
				return err
			}
			q := queueArgs(args, ofSink)
			req := &wailv1.GetDeadLetterRequest{Table: q.table, Sink: q.sink, Offset: offs[0]}
			return adminCall(cmd, g, false, asJSON, func(ctx context.Context, a wailv1connect.AdminServiceClient) (*connect.Response[wailv1.GetDeadLetterResponse], error) {
				return a.GetDeadLetter(ctx, connect.NewRequest(req))
			}, func(m *wailv1.GetDeadLetterResponse) error {
				return printLetter(g.stdout, q, m.GetEntry())
			})
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the response as JSON (a sink's letter: the whole event)")
	return cmd
}

func printLetter(w io.Writer, q letterQueue, e *wailv1.DeadLetterEntry) error {
	l := e.GetLetter()
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "Offset:\t%d\n", e.GetOffset())
	fmt.Fprintf(tw, "Kind:\t%s\n", kindName(l))
	fmt.Fprintf(tw, "Partition:\t%d\n", l.GetPartition())
	if l.GetKind() == wailv1.DeadLetterKind_DEAD_LETTER_KIND_GAP {
		fmt.Fprintf(tw, "Lost intents:\toffsets [%d, %d) of the intent log partition\n", l.GetGapStartOffset(), l.GetGapEndOffset())
	} else {
		fmt.Fprintf(tw, "Key:\t%s\n", displayBytes(l.GetKey(), 0))
	}
	if l.GetKind() == wailv1.DeadLetterKind_DEAD_LETTER_KIND_SINK {
		printSinkLetter(tw, l)
	}
	if v := l.GetSnapshotVersion(); v != 0 {
		fmt.Fprintf(tw, "Row version:\t%d (read by a snapshot)\n", v)
	}
	fmt.Fprintf(tw, "Error:\t%s\n", oneLine(l.GetError(), 0))
	fmt.Fprintf(tw, "Attempts:\t%d\n", l.GetAttempts())
	fmt.Fprintf(tw, "First attempt:\t%s\n", timeUs(l.GetFirstAttemptUs()))
	fmt.Fprintf(tw, "Last attempt:\t%s\n", timeUs(l.GetLastAttemptUs()))
	fmt.Fprintf(tw, "Dead at:\t%s\n", timeUs(l.GetDeadAtUs()))
	if l.GetKind() != wailv1.DeadLetterKind_DEAD_LETTER_KIND_SINK {
		fmt.Fprintf(tw, "Resolver:\t%s\n", oneLine(l.GetResolverId(), 0))
	}
	r, c := e.GetResolution(), e.GetClaim()
	state := stateOf(e)
	switch {
	case r != nil:
		state += " at " + timeUs(r.GetAtUs())
	case c != nil:
		state += fmt.Sprintf(" by %s since %s (if that process died, %s %d takes it over)",
			c.GetHolder(), timeUs(c.GetAtUs()), q.command("redrive"), e.GetOffset())
	default:
		state += fmt.Sprintf(" (%s %d, or %s %d)", q.command("redrive"), e.GetOffset(), q.command("drop"), e.GetOffset())
	}
	fmt.Fprintf(tw, "State:\t%s\n", state)
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(l.GetIntents()) == 0 {
		return nil
	}
	fmt.Fprintln(w, "\nIntents:")
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "OFFSET\tOP\tVERSION\tINTENT ID\tCREATED")
	for i, in := range l.GetIntents() {
		off := "-"
		if i < len(l.GetIntentOffsets()) {
			off = strconv.FormatInt(l.GetIntentOffsets()[i], 10)
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\n", off, strings.TrimPrefix(in.GetOp().String(), "OP_"), in.GetVersion(),
			oneLine(in.GetIntentId(), 0), timeUs(in.GetCreatedAtUs()))
	}
	return tw.Flush()
}

// parseOffsets parses dead-letter offsets (usage error when one is not a
// number of 0 or more).
func parseOffsets(args []string) ([]int64, error) {
	out := make([]int64, len(args))
	for i, a := range args {
		n, err := strconv.ParseInt(a, 10, 64)
		if err != nil || n < 0 {
			return nil, usageErrorf("offset %q: want a number of 0 or more (the OFFSET column of wail dlq ls)", a)
		}
		out[i] = n
	}
	return out, nil
}

// selection parses the arguments of redrive and drop: TABLE (and SINK
// for a sink's letters: n names), then offsets or --all.
func selection(cmd *cobra.Command, args []string, n int, all bool) (letterQueue, []int64, error) {
	var q letterQueue
	if len(args) < n {
		what := "a TABLE"
		if n == 2 {
			what = "a TABLE and a SINK"
		}
		return q, nil, usageErrorf("%s takes %s, then OFFSETs or --all", cmd.CommandPath(), what)
	}
	if err := checkNames(cmd, []string{"TABLE", "SINK"}[:n], args[:n]); err != nil {
		return q, nil, err
	}
	q.table = args[0]
	if n == 2 {
		q.sink = args[1]
	}
	switch rest := len(args) - n; {
	case rest == 0 && !all:
		return q, nil, usageErrorf("%s: name the offsets of dead letters (%s), or --all", cmd.CommandPath(), q.command("ls"))
	case rest > 0 && all:
		return q, nil, usageErrorf("%s: give offsets or --all, not both", cmd.CommandPath())
	}
	offs, err := parseOffsets(args[n:])
	return q, offs, err
}

// settleText is the use line, short and long help of redrive (else
// drop), of a sink's letters with ofSink.
func settleText(ofSink, redrive bool) (use, short, long string) {
	switch {
	case ofSink && redrive:
		return "redrive TABLE SINK [OFFSET...] [--all]", "POST a sink's dead letters again to its endpoint, in per-key order",
			"Redrive sends each letter's event again to the sink's endpoint, through the sink\n" +
				"(it must run in the server you ask, and not be paused), one attempt each, while the\n" +
				"sink holds back the letter's partition. A letter whose key has a newer event on the\n" +
				"bus after it (delivered, to be delivered, or in a newer letter) is settled\n" +
				"superseded and not sent: events carry a key's whole state, and the older one would\n" +
				"arrive after the newer. A letter already settled is not sent again. On an answer\n" +
				"other than 2xx the redrive stops; that letter stays unsettled. A letter dropped after\n" +
				"the redrive read it is not sent (the redrive fails, aborted, naming it). It waits for a request\n" +
				"in flight on the letter's partition (a retrying one may take its --max-retry);\n" +
				"not bounded by --timeout unless given."
	case ofSink:
		return "drop TABLE SINK [OFFSET...] [--all]", "Discard a sink's dead letters (their events are not sent)",
			"Drop settles dead letters without sending their events. A letter a redrive is\n" +
				"sending, or settled after the drop read it, is not dropped: the drop fails\n" +
				"(aborted) naming it and what happened to it; the others are dropped."
	case redrive:
		return "redrive TABLE [OFFSET...] [--all]", "Resolve the keys of dead letters again from the store's current state",
			"Redrive resolves each dead letter's key again: when the store holds a version\n" +
				"newer than the key's last event, it logs an intent for it and the resolver publishes\n" +
				"the key's current state; otherwise there is nothing to publish. A GAP letter\n" +
				"reconciles its partition (see wail table reconcile). Settled letters are not\n" +
				"redriven again. A letter whose key has no event left on the bus and a stored\n" +
				"version older than its retained events, or whose key the store fails to read,\n" +
				"stays unsettled: the command fails naming it (the others are redriven). Waits\n" +
				"(up to 30s) for the resolver to resolve what was logged before; not bounded by\n" +
				"--timeout unless given."
	}
	return "drop TABLE [OFFSET...] [--all]", "Discard dead letters without an event",
		"Drop settles dead letters without publishing anything: their intents get no event.\n" +
			"Use it for letters that must not be published (or were fixed another way)."
}

// newDLQSettleCmd is `wail dlq redrive|drop TABLE ...` (redrive picks),
// or with ofSink `wail sink dlq redrive|drop TABLE SINK ...`.
func newDLQSettleCmd(g *globals, ofSink, redrive bool) *cobra.Command {
	var all, asJSON bool
	var limit int32
	use, short, long := settleText(ofSink, redrive)
	names := 1
	if ofSink {
		names = 2
	}
	cmd := &cobra.Command{
		Use:   use,
		Short: short,
		Long:  long,
		Args:  cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			q, offs, err := selection(cmd, args, names, all)
			if err != nil {
				return err
			}
			if redrive {
				req := &wailv1.RedriveDeadLettersRequest{Table: q.table, Sink: q.sink, Offsets: offs, All: all, Limit: limit}
				return adminCall(cmd, g, true, asJSON, func(ctx context.Context, a wailv1connect.AdminServiceClient) (*connect.Response[wailv1.RedriveDeadLettersResponse], error) {
					return a.RedriveDeadLetters(ctx, connect.NewRequest(req))
				}, func(m *wailv1.RedriveDeadLettersResponse) error {
					printResolutions(g.stdout, m.GetResolutions(), ofSink)
					printUnlisted(g.stdout, q, len(m.GetResolutions()), m.GetResolutionsTotal())
					if rep := m.GetGapReconcile(); rep != nil {
						fmt.Fprint(g.stdout, "GAP letters: ")
						return printReconcile(g.stdout, rep, q.table, false)
					}
					return nil
				})
			}
			req := &wailv1.DropDeadLettersRequest{Table: q.table, Sink: q.sink, Offsets: offs, All: all, Limit: limit}
			return adminCall(cmd, g, false, asJSON, func(ctx context.Context, a wailv1connect.AdminServiceClient) (*connect.Response[wailv1.DropDeadLettersResponse], error) {
				return a.DropDeadLetters(ctx, connect.NewRequest(req))
			}, func(m *wailv1.DropDeadLettersResponse) error {
				printResolutions(g.stdout, m.GetResolutions(), ofSink)
				printUnlisted(g.stdout, q, len(m.GetResolutions()), m.GetResolutionsTotal())
				return nil
			})
		},
	}
	what, of := "drop", "table"
	if redrive {
		what = "redrive"
	}
	if ofSink {
		of = "sink"
	}
	cmd.Flags().BoolVar(&all, "all", false, what+" every unsettled dead letter of the "+of)
	cmd.Flags().Int32Var(&limit, "limit", 0, "list at most this many of the letters settled (0: 1000, the most); the others are counted")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the response as JSON")
	return cmd
}

// printUnlisted says how many letters a redrive or a drop settled beyond
// the listed ones (its limit), when some were not listed.
func printUnlisted(w io.Writer, q letterQueue, listed int, total int64) {
	if more := total - int64(listed); more > 0 {
		fmt.Fprintf(w, "(%d more settled, not listed: %d in all; `%s` lists them)\n", more, total, q.command("ls")+" --include-settled")
	}
}

// printResolutions prints what settled letters; sink: a sink's letters.
func printResolutions(w io.Writer, res []*wailv1.DeadLetterResolution, sink bool) {
	if len(res) == 0 {
		fmt.Fprintln(w, "no dead letters to settle")
		return
	}
	for _, r := range res {
		switch {
		case r.GetAction() == wailv1.DeadLetterAction_DEAD_LETTER_ACTION_DROPPED:
			fmt.Fprintf(w, "%d dropped\n", r.GetOffset())
		case r.GetAction() == wailv1.DeadLetterAction_DEAD_LETTER_ACTION_SUPERSEDED:
			fmt.Fprintf(w, "%d superseded: not sent, the bus has a newer event of its key (v%d at offset %d)\n",
				r.GetOffset(), r.GetSupersededByVersion(), r.GetSupersededByOffset())
		case sink:
			fmt.Fprintf(w, "%d redriven: the endpoint took v%d\n", r.GetOffset(), r.GetRedriveVersion())
		case r.GetRedriveVersion() == 0:
			fmt.Fprintf(w, "%d redriven: nothing to publish (the bus has the stored version, or it is being resolved)\n", r.GetOffset())
		default:
			fmt.Fprintf(w, "%d redriven: intent logged at version %d; the resolver publishes the key's current state\n", r.GetOffset(), r.GetRedriveVersion())
		}
	}
}

func newTableReconcileCmd(g *globals) *cobra.Command {
	var dry, asJSON bool
	cmd := &cobra.Command{
		Use:   "reconcile NAME",
		Short: "Publish the current state of every key whose stored version is newer than its last event",
		Long: "Reconcile compares every key of the table's store with its last event on the bus and\n" +
			"logs an intent for each key the bus is behind on; the resolver then publishes the\n" +
			"key's current state. Run it after a GAP dead letter (retention removed intents\n" +
			"before they were resolved), an operator mistake (e.g. a store written behind\n" +
			"wail's back) or any bug. Safe while writes continue. It settles the table's GAP\n" +
			"letters. Waits (up to 30s per partition) for the resolver to resolve what was\n" +
			"logged before; not bounded by --timeout unless given.",
		Args: exactArgs("NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			req := &wailv1.ReconcileTableRequest{Name: args[0], DryRun: dry}
			return adminCall(cmd, g, true, asJSON, func(ctx context.Context, a wailv1connect.AdminServiceClient) (*connect.Response[wailv1.ReconcileTableResponse], error) {
				return a.ReconcileTable(ctx, connect.NewRequest(req))
			}, func(m *wailv1.ReconcileTableResponse) error { return printReconcile(g.stdout, m, args[0], dry) })
		},
	}
	cmd.Flags().BoolVar(&dry, "dry-run", false, "only report the keys that are behind; log nothing")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the response as JSON")
	return cmd
}

func printReconcile(w io.Writer, m *wailv1.ReconcileTableResponse, table string, dry bool) error {
	what := "intents logged; the resolver publishes their current state"
	if dry {
		what = "dry run: nothing logged"
	}
	fmt.Fprintf(w, "scanned %d keys: %d behind (%s), %d in flight, %d expired\n",
		m.GetKeysScanned(), m.GetKeysBehind(), what, m.GetKeysInFlight(), m.GetKeysExpired())
	if err := printReconciledKeys(w, m.GetKeys(), m.GetKeysBehind(), true); err != nil {
		return err
	}
	if len(m.GetExpiredKeys()) > 0 {
		fmt.Fprintf(w, "expired (no event left on the bus, stored before its retained events: left alone, publishing them could repeat a version):\n")
		if err := printReconciledKeys(w, m.GetExpiredKeys(), m.GetKeysExpired(), false); err != nil {
			return err
		}
	}
	if open := m.GetOpenGapLetters(); len(open) > 0 {
		offs := make([]string, len(open))
		for i, o := range open {
			offs[i] = strconv.FormatInt(o, 10)
		}
		fmt.Fprintf(w, "GAP letters left open: %s: their partitions have expired keys, and one of the lost intents may be an expired key's with no event. "+
			"Write those keys again and reconcile again, or drop the letters once the consumers are known to have their state (`wail dlq drop %s %s`)\n",
			strings.Join(offs, ", "), table, strings.Join(offs, " "))
	}
	return nil
}

// printReconciledKeys prints keys as a table (with their last events when
// withLast), and how many of total it did not list.
func printReconciledKeys(w io.Writer, keys []*wailv1.ReconciledKey, total int64, withLast bool) error {
	if len(keys) == 0 {
		return nil
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	if withLast {
		fmt.Fprintln(tw, "PARTITION\tKEY\tSTORED\tLAST EVENT")
	} else {
		fmt.Fprintln(tw, "PARTITION\tKEY\tSTORED")
	}
	for _, k := range keys {
		stored := strconv.FormatUint(k.GetStoredVersion(), 10)
		if k.GetDeleted() {
			stored += " (deleted)"
		}
		if !withLast {
			fmt.Fprintf(tw, "%d\t%s\t%s\n", k.GetPartition(), displayBytes(k.GetKey(), 40), stored)
			continue
		}
		last := "-"
		if v := k.GetLastEventVersion(); v > 0 {
			last = strconv.FormatUint(v, 10)
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\n", k.GetPartition(), displayBytes(k.GetKey(), 40), stored, last)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if total > int64(len(keys)) {
		fmt.Fprintf(w, "(%d more not listed)\n", total-int64(len(keys)))
	}
	return nil
}
