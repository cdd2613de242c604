package group

import (
	"context"
	"testing"
	"time"

	"github.com/wail-cdc/wail/internal/intentlog"
)

// TestListSkipsBadRegistryKey: the group registry is a topic of the log,
// which on Kafka any client with access writes to, and which keeps what an
// older version wrote. A key whose group name is not one wail takes (here
// a path) made List fail for its table ("invalid group name"), for good
// (the topic is compacted): `wail group list` showed nothing. Now such a
// key is skipped.
func TestListSkipsBadRegistryKey(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	l := openLog(t)
	tb := table(t, l, 1, 1)
	g := New(l, time.Minute)
	defer g.Close()
	a, err := g.Join(ctx, tb, "g", "a", true)
	if err != nil {
		t.Fatal(err)
	}
	next(t, a)
	a.Leave()
	for _, key := range []string{"t/../../x", "t/", "t/bad name"} {
		if err := l.Append(ctx, registryTopic, []*intentlog.Record{{Key: []byte(key), Value: []byte{}}}); err != nil {
			t.Fatal(err)
		}
	}
	if names, err := g.List(ctx, tb); err != nil || len(names) != 1 || names[0] != "g" {
		t.Fatalf("list: %v %v, want [g]", names, err)
	}
}

// FuzzRegistryKey: a group registry record's key is read from the log:
// whatever it is, reading it does not panic, and a name it gives is a
// valid group name of the table asked, which the key is exactly.
func FuzzRegistryKey(f *testing.F) {
	for _, k := range []string{"t/g", "t/", "/g", "t", "t/a/b", "u/g", "t/../x"} {
		f.Add([]byte(k))
	}
	f.Fuzz(func(t *testing.T, key []byte) {
		name, ok := registryName(key, "t")
		if !ok {
			return
		}
		if ValidateName("group", name) != nil || string(key) != "t/"+name {
			t.Fatalf("%q read as group %q", key, name)
		}
	})
}
