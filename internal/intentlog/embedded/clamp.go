package embedded

import (
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"slices"
)

// clampOffsets checks, at Open, every consumer group's committed offsets
// against the recovered partition ends. An offset beyond the end means the
// log lost its tail after the group committed (a repair, a lost disk cache,
// a restored backup): new records would get offsets below the committed
// one and the group would skip them. Such an offset is lowered to the end,
// durably, with an error log line and a warning (Log.Warnings); the records
// it covered were read before the loss.
func (l *Log) clampOffsets(t *topic) error {
	ents, err := l.fs.ReadDir(filepath.Join(t.dir, offsetsDir))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return storageErr(err)
	}
	for _, e := range ents {
		group := e.Name()
		if e.IsDir() || validateName("group", group) != nil {
			continue
		}
		offs, err := t.loadGroup(l.fs, group)
		if err != nil {
			return err
		}
		fixed := map[int32]int64{}
		for p, off := range offs {
			if int(p) >= len(t.parts) { // decodeOffsets refused p < 0
				continue
			}
			if end := t.parts[p].end; off > end {
				fixed[p] = end
				w := fmt.Sprintf("group %s committed offset %d of %s/%d beyond the log end %d: lowered to the end "+
					"(the log lost records [%d, %d) after the group read them; new records get those offsets "+
					"and are read, none skipped)", group, off, t.name, p, end, end, off)
				l.warnings = append(l.warnings, w)
				l.opts.Logger.Error("embedded: committed offset beyond the log end; lowered to the end so that "+
					"no new record is skipped; check why the log lost its tail (a repair, a disk that lost "+
					"acknowledged writes, a restored backup)", "group", group, "topic", t.name, "partition", p,
					"committed", off, "end", end)
			}
		}
		if len(fixed) == 0 {
			continue
		}
		next := map[int32]int64{}
		for p, off := range offs {
			next[p] = off
		}
		for p, off := range fixed {
			next[p] = off
		}
		if err := writeFileAtomic(l.fs, filepath.Join(t.dir, offsetsDir, group), encodeOffsets(next), l.opts.NoSync); err != nil {
			return storageErr(err)
		}
		t.groups[group] = next
	}
	return nil
}

// Warnings returns what Open found and fixed that a person should know
// about (a committed offset lowered to the log end), for a degraded health
// condition. The list does not change after Open.
func (l *Log) Warnings() []string { return slices.Clone(l.warnings) }
