package embedded

import (
	"context"
	"errors"
	"maps"
	"path/filepath"
	"testing"

	"github.com/wail-cdc/wail/internal/intentlog"
	"github.com/wail-cdc/wail/internal/vfs"
)

// TestTopicOwner: a topic records what it was made for (TopicOptions.Owner)
// in its meta file, across a restart. A CreateTopic naming no owner keeps
// it; one naming the same is a no-op; one naming another fails with
// ErrOwnedElsewhere and changes nothing (a table created again under a
// name took over the topics of the one dropped, records and offsets
// included); a topic of an older build (a meta without owner, which reads
// fine) is claimed by the first owner named.
func TestTopicOwner(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	opts := Options{RetentionCheckInterval: -1}
	l := openLog(t, dir, opts)
	createTestTopic(t, l, 1, intentlog.TopicOptions{Owner: "a"})
	appendBatch(t, l, "x", 1)
	// A topic made by an older build: its meta has no owner field.
	noErr(t, l.CreateTopic(ctx, "old", 1, intentlog.TopicOptions{}))
	noErr(t, l.Close())
	noErr(t, vfs.WriteFile(vfs.Default, filepath.Join(dir, "old", metaFile), []byte(`{"version":1,"partitions":1}`), 0o644))

	l = openLog(t, dir, opts)
	defer l.Close()
	owners, err := l.TopicOwners(ctx)
	noErr(t, err)
	if want := map[string]string{testTopic: "a"}; !maps.Equal(owners, want) {
		t.Fatalf("owners after a restart: %v, want %v", owners, want)
	}
	for _, c := range []struct {
		topic, owner string
		want         error
		stored       string
	}{
		{testTopic, "", nil, "a"},
		{testTopic, "a", nil, "a"},
		{testTopic, "b", intentlog.ErrOwnedElsewhere, "a"},
		{"old", "b", nil, "b"},
		{"old", "c", intentlog.ErrOwnedElsewhere, "b"},
	} {
		err := l.CreateTopic(ctx, c.topic, 1, intentlog.TopicOptions{Owner: c.owner})
		if !errors.Is(err, c.want) || (c.want == nil && err != nil) {
			t.Errorf("CreateTopic(%s, owner %q): %v, want %v", c.topic, c.owner, err, c.want)
		}
		m, err := readMeta(l.fs, filepath.Join(dir, c.topic))
		noErr(t, err)
		if m.Owner != c.stored {
			t.Errorf("after CreateTopic(%s, owner %q): stored owner %q, want %q", c.topic, c.owner, m.Owner, c.stored)
		}
	}
	if _, end, err := l.Bounds(ctx, testTopic, 0); err != nil || end != 1 {
		t.Errorf("bounds of the topic after a refused claim: end %d, %v; want its record kept", end, err)
	}
}
