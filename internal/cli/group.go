package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"

	"connectrpc.com/connect"
	"github.com/spf13/cobra"

	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
	"github.com/wail-cdc/wail/api/wail/v1/wailv1connect"
	"github.com/wail-cdc/wail/client"
)

func newGroupCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "group",
		Short: "List, describe and reset a table's consumer groups",
		Long: "A consumer group's members (wail consume, or the Consume API) share a table's\n" +
			"partitions; each acknowledges how far it processed, durably. ls lists a table's\n" +
			"groups, describe shows each partition's committed offset, end, lag (offsets, not\n" +
			"events: tombstones and Kafka transaction markers take offsets) and owner, reset\n" +
			"moves a group without live members.",
		Args: cobra.ArbitraryArgs,
		RunE: groupRunE,
	}
	g.clientFlags(cmd.PersistentFlags())
	cmd.AddCommand(newGroupLsCmd(g), newGroupDescribeCmd(g), newGroupResetCmd(g))
	return cmd
}

// eventsCall runs one EventService request for --addr, bounded by --timeout.
func eventsCall[T any](cmd *cobra.Command, g *globals, call func(context.Context, wailv1connect.EventServiceClient) (*connect.Response[T], error)) (*T, error) {
	cl, err := g.clients()
	if err != nil {
		return nil, err
	}
	ctx, cancel := g.unary(cmd.Context())
	defer cancel()
	resp, err := call(ctx, cl.events)
	if err != nil {
		return nil, err
	}
	return resp.Msg, nil
}

func newGroupLsCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:     "ls TABLE",
		Aliases: []string{"list"},
		Short:   "List a table's consumer groups",
		Args:    exactArgs("TABLE"),
		RunE: func(cmd *cobra.Command, args []string) error {
			m, err := eventsCall(cmd, g, func(ctx context.Context, c wailv1connect.EventServiceClient) (*connect.Response[wailv1.ListGroupsResponse], error) {
				return c.ListGroups(ctx, connect.NewRequest(&wailv1.ListGroupsRequest{Table: args[0]}))
			})
			if err != nil {
				return err
			}
			for _, name := range m.Groups {
				if _, err := fmt.Fprintln(g.stdout, name); err != nil {
					return err
				}
			}
			return nil
		},
	}
}

func newGroupDescribeCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "describe TABLE GROUP",
		Short: "Show a consumer group's members and each partition's committed offset, lag and owner",
		Args:  exactArgs("TABLE", "GROUP"),
		RunE: func(cmd *cobra.Command, args []string) error {
			m, err := eventsCall(cmd, g, func(ctx context.Context, c wailv1connect.EventServiceClient) (*connect.Response[wailv1.DescribeGroupResponse], error) {
				return c.DescribeGroup(ctx, connect.NewRequest(&wailv1.DescribeGroupRequest{Table: args[0], Group: args[1]}))
			})
			if err != nil {
				return err
			}
			members := "none"
			if len(m.Members) > 0 {
				members = strings.Join(m.Members, ", ")
			}
			if _, err := fmt.Fprintf(g.stdout, "members: %s\n", members); err != nil {
				return err
			}
			if m.SnapshotMember != "" {
				if _, err := fmt.Fprintf(g.stdout, "snapshot: taken by %s, %d rows sent\n", m.SnapshotMember, m.SnapshotEvents); err != nil {
					return err
				}
			}
			return printGroupPartitions(g.stdout, m.Partitions)
		},
	}
}

func printGroupPartitions(w io.Writer, parts []*wailv1.GroupPartition) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "PARTITION\tCOMMITTED\tEND\tLAG\tOWNER\tUNACKED")
	var lag int64
	for _, p := range parts {
		owner, unacked := p.Owner, "-"
		if owner == "" {
			owner = "-"
		}
		if p.Revoking { // it moves once its owner acknowledged what it was sent
			owner += " (revoking)"
		}
		if p.UnackedMs > 0 {
			unacked = fmt.Sprintf("%dms", p.UnackedMs)
		}
		fmt.Fprintf(tw, "%d\t%d\t%d\t%d\t%s\t%s\n", p.Partition, p.Committed, p.End, p.Lag, owner, unacked)
		lag += p.Lag
	}
	fmt.Fprintf(tw, "total\t\t\t%d\t\t\n", lag)
	return tw.Flush()
}

func newGroupResetCmd(g *globals) *cobra.Command {
	var to string
	cmd := &cobra.Command{
		Use:   "reset TABLE GROUP --to beginning|latest|CURSOR|TIME",
		Short: "Move a consumer group without live members (creating it if new)",
		Args:  exactArgs("TABLE", "GROUP"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if to == "" {
				return usageErrorf("--to is required: beginning, latest, a cursor or a time")
			}
			// A reset creates a group it does not find: say so, for a typo
			// of the name leaves the group meant where it was. (Listing
			// takes consume permission, a reset admin: without it, no note.)
			known, listErr := eventsCall(cmd, g, func(ctx context.Context, c wailv1connect.EventServiceClient) (*connect.Response[wailv1.ListGroupsResponse], error) {
				return c.ListGroups(ctx, connect.NewRequest(&wailv1.ListGroupsRequest{Table: args[0]}))
			})
			m, err := eventsCall(cmd, g, func(ctx context.Context, c wailv1connect.EventServiceClient) (*connect.Response[wailv1.ResetGroupResponse], error) {
				return c.ResetGroup(ctx, connect.NewRequest(&wailv1.ResetGroupRequest{Table: args[0], Group: args[1], To: to}))
			})
			if err != nil {
				return err
			}
			if listErr == nil && !slices.Contains(known.Groups, args[1]) {
				fmt.Fprintf(g.stderr, "new group %s: table %s had no group of that name (`wail group ls %s` lists them)\n", args[1], args[0], args[0])
			}
			return printGroupPartitions(g.stdout, m.Partitions)
		},
	}
	cmd.Flags().StringVar(&to, "to", "", "where: beginning, latest, a cursor (from tail) or a time (RFC 3339 or -DURATION)")
	return cmd
}

func newConsumeCmd(g *globals) *cobra.Command {
	var group, member, start string
	cmd := &cobra.Command{
		Use:   "consume TABLE --group GROUP --member ID",
		Short: "Consume a table's events as a member of a consumer group, acknowledging each once printed",
		Long: "Join a consumer group of a table and print the events of the partitions this member\n" +
			"owns, as tail does; each event is acknowledged (committed) once printed, so a member\n" +
			"that dies leaves only its unprinted events to another member. Grants, revocations and\n" +
			"events retention removed before the group read them (\"gap: ...\") print on stderr. Reconnects by itself when the server restarts (it joins again and gets\n" +
			"its unacknowledged events again). Each acknowledgement waits at most --timeout: one\n" +
			"the server does not answer in time, or while it is unavailable, is said on stderr and\n" +
			"consume goes on (that event may come again). Runs until Ctrl-C.",
		Args: exactArgs("TABLE"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if group == "" || member == "" {
				return usageErrorf("--group and --member are required")
			}
			switch start {
			case "beginning", "latest", "snapshot":
			default:
				return usageErrorf("--start %q: use beginning, latest or snapshot (where a new group starts; `wail group reset` moves one to a time or cursor)", start)
			}
			cl, err := g.clients()
			if err != nil {
				return err
			}
			return consume(cmd.Context(), cl.events, g, &wailv1.ConsumeRequest{Table: args[0], Group: group, Member: member, Start: start})
		},
	}
	g.clientFlags(cmd.Flags())
	cmd.Flags().StringVar(&group, "group", "", "the consumer group")
	cmd.Flags().StringVar(&member, "member", "", "this member's id, unique among the group's live members")
	cmd.Flags().StringVar(&start, "start", "beginning", "where a new group starts: beginning, latest or snapshot (every key's current state, then the changes)")
	refuseEmpty(cmd.Flags(), "start")
	return cmd
}

// consume prints a member's events and acknowledges each once printed
// (client.Consumer).
func consume(ctx context.Context, c wailv1connect.EventServiceClient, g *globals, req *wailv1.ConsumeRequest) error {
	cons, err := client.NewConsumer(ctx, c, client.ConsumerConfig{Table: req.Table, Group: req.Group, Member: req.Member, Start: req.Start,
		OnPartitions: func(granted []*wailv1.PartitionGrant, revoked []int32) {
			for _, gr := range granted {
				fmt.Fprintf(g.stderr, "granted partition %d at offset %d\n", gr.Partition, gr.Offset)
			}
			for _, p := range revoked {
				fmt.Fprintf(g.stderr, "revoked partition %d\n", p)
			}
		},
		OnGap: func(gap *wailv1.RetentionGap) { fmt.Fprintln(g.stderr, gapNotice(gap, "the group")) },
		Reconnect: client.Reconnect{OnReconnect: func(err error, attempt int) {
			if err == nil {
				err = client.ErrStreamEnded
			}
			fmt.Fprintf(g.stderr, "stream lost (%v): joining again (attempt %d)\n", err, attempt)
		}}})
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	defer cons.Close()
	for {
		m, err := cons.Next(ctx)
		if ctx.Err() != nil || errors.Is(err, client.ErrStreamEnded) {
			return nil
		}
		if err != nil {
			return err
		}
		if _, err := io.WriteString(g.stdout, formatEvent(&wailv1.SubscribeResponse{Event: m.Event, Partition: m.Partition, Offset: m.Offset, Snapshot: m.Snapshot}, plainValue)+"\n"); err != nil {
			return err
		}
		actx, cancel := g.unary(ctx)
		err = cons.Ack(actx, m)
		cancel()
		switch {
		case err == nil:
		case errors.Is(err, client.ErrAckRefused):
			fmt.Fprintf(g.stderr, "%v\n", err)
		case ctx.Err() != nil:
			return nil
		case ackRetriable(err):
			// Not acknowledged, or not known to be: the event comes again
			// unless a later acknowledgement of its partition covers it.
			fmt.Fprintf(g.stderr, "%v: the event at partition %d, offset %d may come again\n", err, m.Partition, m.Offset)
		default:
			return err
		}
	}
}

// ackRetriable reports whether an acknowledgement failed for a reason
// that passes (no answer within --timeout, the server away or busy), so
// that consume goes on, rather than for one that stays (a credential
// refused, the table dropped).
func ackRetriable(err error) bool {
	switch connect.CodeOf(err) {
	case connect.CodeDeadlineExceeded, connect.CodeUnavailable, connect.CodeAborted, connect.CodeResourceExhausted, connect.CodeCanceled:
		return true
	}
	return false
}
