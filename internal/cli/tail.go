package cli

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"connectrpc.com/connect"
	"github.com/spf13/cobra"
	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
	"github.com/wail-cdc/wail/client"
	"github.com/wail-cdc/wail/internal/eventbus"
)

// tailValueLimit is how many characters of a value a tail line shows.
const tailValueLimit = 200

func newTailCmd(g *globals) *cobra.Command {
	var (
		from, cursor string
		asJSON       bool
		untilEnd     bool
		valueJSON    bool
		failOnGap    bool
	)
	cmd := &cobra.Command{
		Use:   "tail TABLE",
		Short: "Stream the change events of a table until Ctrl-C (or --until-end)",
		Long: "Stream the change events of a table, one line per event:\n" +
			"  PARTITION/OFFSET OP key=KEY version=N value=VALUE\n" +
			"Keys and values print as text when printable (and not starting with\n" +
			"0x), else as 0x-prefixed hex; values are cut at 200 characters.\n" +
			"--json prints each SubscribeResponse\n" +
			"(event, partition, offset, cursor) as one line of protojson.\n" +
			"--until-end stops at the end of what the table's events held when tail\n" +
			"started and prints the cursor to resume from on stderr (\"cursor: C\");\n" +
			"--cursor C resumes exactly after it. Offsets are not dense (tombstones,\n" +
			"Kafka transaction markers): never count events to find an end.\n" +
			"Events that retention (log.event_retention) removed before tail read them\n" +
			"are skipped with a line on stderr (\"gap: partition P offsets [FROM, TO) ...\");\n" +
			"--fail-on-gap fails instead (exit code 1).\n" +
			"--value-json prints a typed table's values as Protobuf JSON (with the latest\n" +
			"schema of its value subject). A server that does not answer the opening of the\n" +
			"stream within 30s fails it (exit code 1).",
		Args: exactArgs("TABLE"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if cursor != "" {
				if cmd.Flags().Changed("from") {
					return usageErrorf("--cursor and --from: give one")
				}
				if !eventbus.IsCursor(cursor) {
					return usageErrorf("--cursor %q: not a cursor (pass one exactly as a stream printed it)", cursor)
				}
				from = cursor
			}
			if _, err := eventbus.ParseStart(from); err != nil {
				return usageErrorf("--from %q: %v", from, err)
			}
			cl, err := g.clients()
			if err != nil {
				return err
			}
			value := plainValue
			if valueJSON {
				if asJSON {
					return usageErrorf("--value-json prints event lines: leave out --json")
				}
				p, err := newValuePrinter(cmd, g, cl, args[0])
				if err != nil {
					return err
				}
				value = p.print
			}
			req := &wailv1.SubscribeRequest{Table: args[0], From: from, UntilEnd: untilEnd, MaxBatchEvents: eventsPerMessage, FailOnGap: failOnGap}
			return tail(cmd, cl, g, req, asJSON, value)
		},
	}
	g.addrFlag(cmd.Flags())
	cmd.Flags().StringVar(&from, "from", "latest",
		"where to start: beginning, latest, snapshot (every key's current state, then the changes), "+
			"a time (RFC 3339 or -DURATION, e.g. -15m), vN (after version N) or @OFFSET (on every partition)")
	cmd.Flags().StringVar(&cursor, "cursor", "", "resume exactly after this cursor (printed by --until-end, carried by --json)")
	cmd.Flags().BoolVar(&untilEnd, "until-end", false, "stop at the end of what exists when tail starts; print the cursor on stderr")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print events as protojson, one per line")
	cmd.Flags().BoolVar(&valueJSON, "value-json", false, "print a typed table's values as Protobuf JSON")
	cmd.Flags().BoolVar(&failOnGap, "fail-on-gap", false, "fail rather than skip events that retention removed before tail read them")
	refuseEmpty(cmd.Flags(), "cursor", "from")
	return cmd
}

// tail prints events until the stream ends or the context is cancelled
// (which is a clean exit).
func tail(cmd *cobra.Command, cl *clients, g *globals, req *wailv1.SubscribeRequest, asJSON bool, value func([]byte) string) error {
	ctx := cmd.Context()
	stream, stop, err := openSubscription(ctx, cl, req)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	defer stop()
	defer stream.Close()
	cursor := ""
	for stream.Receive() {
		for _, msg := range unbatch(stream.Msg()) {
			if msg.Cursor != "" {
				cursor = msg.Cursor
			}
			if gap := msg.GetGap(); gap != nil {
				if _, err := fmt.Fprintln(g.stderr, gapNotice(gap, "tail")); err != nil {
					return err
				}
			}
			switch {
			case asJSON:
				err = writeProtoJSON(g.stdout, msg)
			case msg.Event != nil:
				_, err = io.WriteString(g.stdout, formatEvent(msg, value)+"\n")
			}
			if err != nil {
				return err
			}
		}
	}
	if ctx.Err() != nil {
		return nil
	}
	if err := stream.Err(); err != nil {
		return err
	}
	if req.UntilEnd && cursor != "" {
		_, err = fmt.Fprintf(g.stderr, "cursor: %s\n", cursor)
	}
	return err
}

// gapNotice is the line tail (or the group, in consume) prints on stderr
// for a retention gap.
func gapNotice(gap *wailv1.RetentionGap, reader string) string {
	return fmt.Sprintf("gap: partition %d offsets [%d, %d) were removed by retention (log.event_retention) before %s read them: "+
		"their events are skipped", gap.GetPartition(), gap.GetFrom(), gap.GetTo(), reader)
}

// openSubscription opens the stream of req on a child of ctx that the
// returned stop ends: Subscribe returns once the server answered (its
// response headers), and that wait is bounded by streamOpenTimeout. Over
// HTTP/1.1 nothing else bounds it, and a server that took the request and
// never answered (hung, or a proxy in front of one that is down) held tail
// for ever.
func openSubscription(ctx context.Context, cl *clients, req *wailv1.SubscribeRequest) (*connect.ServerStreamForClient[wailv1.SubscribeResponse], context.CancelFunc, error) {
	sctx, stop := context.WithCancel(ctx)
	timer := time.AfterFunc(streamOpenTimeout, stop)
	stream, err := cl.events.Subscribe(sctx, connect.NewRequest(req))
	if !timer.Stop() && ctx.Err() == nil { // the bound cut the opening
		if err == nil {
			_ = stream.Close()
		}
		stop()
		return nil, nil, fmt.Errorf("%w: no answer within %s (is the server at --addr hung, or a proxy in front of one that is down?)",
			client.ErrOpenTimeout, streamOpenTimeout)
	}
	if err != nil {
		stop()
		return nil, nil, err
	}
	return stream, stop, nil
}

// eventsPerMessage is the batch tail asks the server for.
const eventsPerMessage = 1000

// unbatch returns the events of a message one per SubscribeResponse
// (event, partition, offset, snapshot; the last one with the message's
// cursor), the form tail prints, whether the server sent them batched or
// one per message (a server that predates batches); a message without
// events (a cursor) as it is.
func unbatch(m *wailv1.SubscribeResponse) []*wailv1.SubscribeResponse {
	if len(m.GetEvents()) == 0 {
		return []*wailv1.SubscribeResponse{m}
	}
	out := make([]*wailv1.SubscribeResponse, len(m.GetEvents()))
	for i, e := range m.GetEvents() {
		out[i] = &wailv1.SubscribeResponse{Event: e.GetEvent(), Partition: e.GetPartition(), Offset: e.GetOffset(), Snapshot: e.GetSnapshot()}
	}
	out[len(out)-1].Cursor = m.GetCursor()
	return out
}

// formatEvent renders one event as a tail line, its value with value.
func formatEvent(m *wailv1.SubscribeResponse, value func([]byte) string) string {
	ev := m.GetEvent()
	op := strings.TrimPrefix(ev.GetOp().String(), "OP_")
	at := fmt.Sprintf("%d/%d", m.GetPartition(), m.GetOffset())
	if m.GetSnapshot() {
		at = "snapshot"
	}
	s := fmt.Sprintf("%s %s key=%s version=%d", at, op,
		displayBytes(ev.GetKey(), tailValueLimit), ev.GetVersion())
	if ev.GetOp() != wailv1.Op_OP_DELETE {
		s += " value=" + value(ev.GetValue())
	}
	return s
}

// plainValue prints a value as text when printable, else as hex, cut at
// tailValueLimit.
func plainValue(b []byte) string { return displayBytes(b, tailValueLimit) }

// streamOpenTimeout bounds the wait for the server to answer the opening
// of tail's stream (a var for tests).
var streamOpenTimeout = client.DefaultOpenTimeout
