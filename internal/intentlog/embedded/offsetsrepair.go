package embedded

import (
	"errors"
	"fmt"
	"hash/crc32"
	"io/fs"
	"path/filepath"
	"slices"

	"github.com/wail-cdc/wail/internal/vfs"
)

// OffsetsReset is a consumer group's offsets file that Repair replaced.
type OffsetsReset struct {
	Topic, Group string
	File         string  // the offsets file, replaced
	Quarantine   string  // a copy of its damaged bytes
	Reason       string  // why Open refused it
	Start        []int64 // the group's new committed offset of each partition: its first retained offset
}

// repairOffsets replaces each offsets file of a topic that Open refuses
// (decodeOffsets: a checksum that fails, entries no commit writes) with one
// that commits, for every partition of the topic, its first retained
// offset (starts).
//
// The damaged file says nothing that can be trusted, and nothing else
// keeps a group's offsets: a commit replaces the file by a rename, so no
// previous copy is left. (A "#<group>.tmp" is left only by a crash during
// a commit, and overwritten by the next one.) A group may only start again
// at or below what it had committed, which is at or above the first
// retained offset: retention here removes expired segments whatever the
// groups committed, and a group whose committed offset fell below the
// start goes on from the start (the resolver first writes a gap letter
// for the offsets in between). So the first retained offset is the lowest
// position a group could have, and starting there skips nothing that is
// still in the log: the group reads again what it had read. The resolver
// resolves those intents again: at start it learns the last version of
// each key from the events published since the first of them was logged
// (minus its dedupe horizon), so it publishes no version the event topic
// still holds. A consumer group gets those events again (at least once).
// A committed offset below the start, whose gap had yet to be reported,
// cannot be told apart; docs/operations.md says when to reconcile. Every
// partition gets an entry: a group with no offset for a partition may
// start at its end.
//
// The damaged bytes are copied to "#quarantine-<group>-<n>" (the first n
// not taken; a name Open ignores; offsetsQuarantineName) before the file is replaced, each
// written atomically and durably (writeFileAtomic): a crash in between
// leaves the damaged file in place, and repairing again copies it again.
func repairOffsets(fsys vfs.FS, topic, tdir string, starts []int64, rep *RepairReport) error {
	dir := filepath.Join(tdir, offsetsDir)
	ents, err := fsys.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	taken := map[string]bool{}
	for _, e := range ents {
		taken[e.Name()] = true
	}
	for _, e := range ents {
		group := e.Name()
		if e.IsDir() || validateName("group", group) != nil {
			continue // what Open ignores (clampOffsets)
		}
		rep.OffsetsFiles++
		path := filepath.Join(dir, group)
		b, err := vfs.ReadFile(fsys, path)
		if err != nil {
			return err
		}
		_, bad := decodeOffsets(b)
		if bad == nil {
			continue
		}
		var q string
		for n := 1; ; n++ {
			if name := offsetsQuarantineName(group, n); !taken[name] {
				taken[name], q = true, filepath.Join(dir, name)
				break
			}
		}
		if err := writeFileAtomic(fsys, q, b, false); err != nil {
			return fmt.Errorf("quarantine %s: %w", path, err)
		}
		offs := make(map[int32]int64, len(starts))
		for p, s := range starts {
			offs[int32(p)] = s
		}
		if err := writeFileAtomic(fsys, path, encodeOffsets(offs), false); err != nil {
			return fmt.Errorf("replace %s: %w", path, err)
		}
		rep.Offsets = append(rep.Offsets, OffsetsReset{Topic: topic, Group: group, File: path, Quarantine: q,
			Reason: stripCorrupt(bad), Start: slices.Clone(starts)})
	}
	return nil
}

// maxFileName is the longest file name that Linux filesystems take
// (NAME_MAX).
const maxFileName = 255

// offsetsQuarantineName is "#quarantine-<group>-<n>". The name of a group
// may be 249 characters long (maxNameLen), too long for that name once
// writeFileAtomic puts "#" and ".tmp" around it: then the group's name is
// cut to fit and followed by "~" and its CRC-32C, in hex.
func offsetsQuarantineName(group string, n int) string {
	suffix := fmt.Sprintf("-%d", n)
	name := "#quarantine-" + group + suffix
	if over := len("#"+name+".tmp") - maxFileName; over > 0 {
		tag := fmt.Sprintf("~%08x", crc32.Checksum([]byte(group), castagnoli))
		name = "#quarantine-" + group[:len(group)-over-len(tag)] + tag + suffix
	}
	return name
}
