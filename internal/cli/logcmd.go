package cli

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/wail-cdc/wail/internal/intent"
	"github.com/wail-cdc/wail/internal/intentlog/embedded"
)

func newLogCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "log", Short: "Maintain the embedded intent log on disk (the server must be stopped)", RunE: groupRunE}
	cmd.AddCommand(&cobra.Command{
		Use:   "repair DATA_DIR",
		Short: "Quarantine corrupt batches and damaged offsets files of the embedded log; list what was lost",
		Long: "Check every batch of the embedded log in DATA_DIR/log (or DATA_DIR itself when it is the\n" +
			"log directory) and remove what `wail serve` refuses to start with: each damaged region is\n" +
			"moved to a #quarantine-<segment>-<position> file next to its segment, the valid batches after\n" +
			"it are kept, and the lost offsets are printed and recorded in the partition's #lost file.\n" +
			"A consumer group's damaged offsets file (offsets/<group> of a topic) is copied to\n" +
			"offsets/#quarantine-<group>-<n> and replaced by one that starts the group at each partition's\n" +
			"first retained offset, the lowest position it can have: it reads again what it had read (the\n" +
			"resolvers resolve those intents again, publishing no version the event topic still holds; a\n" +
			"consumer group gets those events again) and skips nothing still in the log.\n" +
			"A partition's damaged #lost file is copied to #quarantine-lost-<n> and written again from the\n" +
			"gaps between its segments.\n" +
			"Segment files missing at the end of a partition, and overlapping segments, are not repaired:\n" +
			"it fails with the error the start gives, which says what to do.\n" +
			"A sound log is left unchanged. The server must be stopped (the log directory is locked).",
		Args: exactArgs("DATA_DIR"),
		RunE: func(cmd *cobra.Command, args []string) error {
			dir, err := logDir(args[0])
			if err != nil {
				return err
			}
			rep, err := embedded.Repair(dir, embedded.Options{})
			if err != nil {
				return err
			}
			w := g.stdout
			fmt.Fprintf(w, "checked %d partitions, %d segments, %d bytes, %d offsets files in %s\n",
				rep.Partitions, rep.Segments, rep.Bytes, rep.OffsetsFiles, dir)
			if len(rep.Lost) == 0 && len(rep.Offsets) == 0 && len(rep.LostFiles) == 0 {
				fmt.Fprintln(w, "nothing to repair")
				return nil
			}
			for _, f := range rep.LostFiles {
				fmt.Fprintf(w, "rebuilt %s: it was damaged (%s); its bytes are kept in %s; the gaps it listed are listed again below\n",
					f.File, f.Reason, f.Quarantine)
			}
			for _, l := range rep.Lost {
				to := fmt.Sprint(l.To)
				if l.To < 0 {
					to = "end of log"
				}
				fmt.Fprintf(w, "lost %s/%d offsets [%d, %s): %s", l.Topic, l.Partition, l.From, to, l.Reason)
				if l.Quarantine != "" {
					fmt.Fprintf(w, "; %d bytes at position %d of %s moved to %s", l.Bytes, l.Position, l.Segment, l.Quarantine)
				}
				fmt.Fprintln(w)
			}
			if len(rep.Lost) > 0 {
				fmt.Fprintln(w, "the log opens again; resolvers skip the lost offsets (see docs/operations.md, \"Storage\")")
			}
			for _, o := range rep.Offsets {
				printOffsetsReset(w, o)
			}
			return nil
		},
	})
	return cmd
}

// printOffsetsReset says what a repair of a group's offsets file did, and
// what follows from it.
func printOffsetsReset(w io.Writer, o embedded.OffsetsReset) {
	starts := make([]string, len(o.Start))
	retention := false
	for p, s := range o.Start {
		starts[p] = fmt.Sprintf("%d:%d", p, s)
		retention = retention || s > 0
	}
	fmt.Fprintf(w, "reset group %s of %s: %s was damaged (%s); its bytes are kept in %s\n", o.Group, o.Topic, o.File, o.Reason, o.Quarantine)
	fmt.Fprintf(w, "  it starts again at each partition's first retained offset: %s (partition:offset)\n", strings.Join(starts, " "))
	table, resolvers := strings.CutPrefix(o.Topic, intent.Topic(""))
	if !resolvers {
		fmt.Fprintln(w, "  it reads again what it had read: a consumer group gets those records again (at-least-once)")
		return
	}
	fmt.Fprintln(w, "  the resolvers resolve again every retained intent, publishing no version the event topic still holds;")
	fmt.Fprintln(w, "  until they catch up, the table's backlog counts them (writes may be refused with resource_exhausted")
	fmt.Fprintln(w, "  over proxy.max_backlog); see docs/operations.md, \"Storage\"")
	if retention {
		fmt.Fprintf(w, "  retention had removed the intents below those offsets: if the resolvers were behind by more than\n"+
			"  log.retention when the file was damaged, run `wail table reconcile %s` once wail runs\n", table)
	}
}

// logDir returns the embedded log directory of a data directory.
func logDir(dataDir string) (string, error) {
	for _, d := range []string{filepath.Join(dataDir, "log"), dataDir} {
		if _, err := os.Stat(filepath.Join(d, "#lock")); err == nil {
			return d, nil
		} else if !errors.Is(err, fs.ErrNotExist) {
			return "", err
		}
	}
	return "", fmt.Errorf("%s holds no embedded log (no log/#lock)", dataDir)
}
