package cli

import (
	"fmt"
	"io"
	"strconv"
	"strings"

	"connectrpc.com/connect"
	"github.com/spf13/cobra"
	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
)

// tailValueLimit is how many characters of a value a tail line shows.
const tailValueLimit = 200

func newTailCmd(g *globals) *cobra.Command {
	var (
		from      string
		asJSON    bool
		valueJSON bool
	)
	cmd := &cobra.Command{
		Use:   "tail TABLE",
		Short: "Stream the change events of a table until Ctrl-C",
		Long: "Stream the change events of a table, one line per event:\n" +
			"  PARTITION/OFFSET OP key=KEY version=N value=VALUE\n" +
			"Keys and values print as text when printable, else as 0x-prefixed hex;\n" +
			"values are cut at 200 characters. --json prints each SubscribeResponse\n" +
			"(event, partition, offset) as one line of protojson. --value-json prints a typed\n" +
			"table's values as Protobuf JSON (with the latest schema of its value subject).",
		Args: exactArgs("TABLE"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkFrom(from); err != nil {
				return err
			}
			cl, err := g.clients()
			if err != nil {
				return err
			}
			value := func(b []byte) string { return displayBytes(b, tailValueLimit) }
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
			return tail(cmd, cl, g.stdout, &wailv1.SubscribeRequest{Table: args[0], From: from}, asJSON, value)
		},
	}
	g.addrFlag(cmd.Flags())
	cmd.Flags().StringVar(&from, "from", "latest", "where to start: beginning, latest, vN (after version N) or @OFFSET (on every partition)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print events as protojson, one per line")
	cmd.Flags().BoolVar(&valueJSON, "value-json", false, "print a typed table's values as Protobuf JSON")
	return cmd
}

// checkFrom validates the --from syntax before asking the server.
func checkFrom(from string) error {
	switch {
	case from == "beginning" || from == "latest":
		return nil
	case strings.HasPrefix(from, "v"):
		if _, err := strconv.ParseUint(from[1:], 10, 64); err == nil {
			return nil
		}
	case strings.HasPrefix(from, "@"):
		if n, err := strconv.ParseInt(from[1:], 10, 64); err == nil && n >= 0 {
			return nil
		}
	}
	return usageErrorf("--from %q: use beginning, latest, vN or @OFFSET", from)
}

// tail prints events until the stream ends or the context is cancelled
// (which is a clean exit).
func tail(cmd *cobra.Command, cl *clients, w io.Writer, req *wailv1.SubscribeRequest, asJSON bool, value func([]byte) string) error {
	ctx := cmd.Context()
	stream, err := cl.events.Subscribe(ctx, connect.NewRequest(req))
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	defer stream.Close()
	for stream.Receive() {
		msg := stream.Msg()
		if asJSON {
			err = writeProtoJSON(w, msg)
		} else {
			_, err = io.WriteString(w, formatEvent(msg, value)+"\n")
		}
		if err != nil {
			return err
		}
	}
	if ctx.Err() != nil {
		return nil
	}
	return stream.Err()
}

// formatEvent renders one event as a tail line, its value with value.
func formatEvent(m *wailv1.SubscribeResponse, value func([]byte) string) string {
	ev := m.GetEvent()
	op := strings.TrimPrefix(ev.GetOp().String(), "OP_")
	s := fmt.Sprintf("%d/%d %s key=%s version=%d", m.GetPartition(), m.GetOffset(), op,
		displayBytes(ev.GetKey(), tailValueLimit), ev.GetVersion())
	if ev.GetOp() != wailv1.Op_OP_DELETE {
		s += " value=" + value(ev.GetValue())
	}
	return s
}
