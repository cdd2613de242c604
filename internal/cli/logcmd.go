package cli

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/wail-cdc/wail/internal/intentlog/embedded"
)

func newLogCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "log", Short: "Maintain the embedded intent log on disk (the server must be stopped)", RunE: groupRunE}
	cmd.AddCommand(&cobra.Command{
		Use:   "repair DATA_DIR",
		Short: "Move corrupt batches of the embedded log to quarantine files and list the offsets lost",
		Long: "Check every batch of the embedded log in DATA_DIR/log (or DATA_DIR itself when it is the\n" +
			"log directory) and remove what `wail serve` refuses to start with: each damaged region is\n" +
			"moved to a #quarantine-<segment>-<position> file next to its segment, the valid batches after\n" +
			"it are kept, and the lost offsets are printed and recorded in the partition's #lost file.\n" +
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
			fmt.Fprintf(w, "checked %d partitions, %d segments, %d bytes in %s\n", rep.Partitions, rep.Segments, rep.Bytes, dir)
			if len(rep.Lost) == 0 {
				fmt.Fprintln(w, "nothing to repair")
				return nil
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
			fmt.Fprintln(w, "the log opens again; resolvers skip the lost offsets (see docs/operations.md, \"Storage\")")
			return nil
		},
	})
	return cmd
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
