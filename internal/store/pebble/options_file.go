package pebble

import (
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
)

// optionsFileError returns what to do when Open failed (openErr) on the
// store's OPTIONS file, or nil when that is not why. Pebble writes an
// OPTIONS file (OPTIONS-NNNNNN) at each Open recording the options it was
// opened with, and at the next Open checks the newest one against its
// options (the comparer, the merger, the WAL directory); a garbage one
// failed Open with Pebble's bare parse error (a corruption: the advice
// for damaged data, restore the whole store) or comparer check, naming no
// file. The rows are not in it, and Pebble checks none when there is
// none (open.go: previousOptionsFilename) and writes a new one, so
// removing it is safe: the comparer is checked against the MANIFEST's
// anyway, and this store sets no WAL directory or merger of its own.
func optionsFileError(fs vfs.FS, dir string, po *pebble.Options, openErr error) error {
	path := newestOptionsFile(fs, dir)
	if path == "" {
		return nil
	}
	f, err := fs.Open(path)
	if err != nil {
		return nil
	}
	b, err := io.ReadAll(f)
	_ = f.Close()
	if err != nil {
		return nil
	}
	o := po.Clone()
	o.EnsureDefaults()
	checkErr := o.CheckCompatibility(dir, string(b))
	if checkErr == nil || !strings.Contains(openErr.Error(), checkErr.Error()) {
		return nil
	}
	msg, _, _ := strings.Cut(checkErr.Error(), "\n")
	return fmt.Errorf("the OPTIONS file %s does not read as this store's options (%s): it only records the options the store "+
		"was last opened with, which Open checks; the rows are not in it. Restore it from a backup of DATA_DIR, "+
		"or remove it: Pebble rewrites it at the next Open", path, msg)
}

// newestOptionsFile returns the path of dir's OPTIONS file of the
// highest number, the one Pebble checks ("": none).
func newestOptionsFile(fs vfs.FS, dir string) string {
	names, err := fs.List(dir)
	if err != nil {
		return ""
	}
	var newest string
	var high uint64
	for _, name := range names {
		num, ok := strings.CutPrefix(name, "OPTIONS-")
		if !ok {
			continue
		}
		n, err := strconv.ParseUint(num, 10, 64)
		if err != nil || newest != "" && n < high {
			continue
		}
		newest, high = fs.PathJoin(dir, name), n
	}
	return newest
}
