package cli

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wail-cdc/wail/internal/eventbus"
	"github.com/wail-cdc/wail/internal/intent"
	"github.com/wail-cdc/wail/internal/intentlog"
	"github.com/wail-cdc/wail/internal/intentlog/embedded"
)

// TestLogRepair: `wail log repair DATA_DIR` on a log with a damaged batch
// followed by valid ones prints the lost offsets and the quarantine file;
// the log opens afterwards; a second run finds nothing; a damaged #lost
// file is rebuilt, saying so.
func TestLogRepair(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	data := t.TempDir()
	dir := filepath.Join(data, "log")
	l, err := embedded.Open(dir, embedded.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := l.CreateTopic(ctx, "t", 1, intentlog.TopicOptions{}); err != nil {
		t.Fatal(err)
	}
	var sizes []int64
	seg := filepath.Join(dir, "t", "0", "00000000000000000000.log")
	for _, k := range []string{"a", "b", "c"} {
		if err := l.Append(ctx, "t", []*intentlog.Record{{Key: []byte(k), Value: []byte("value " + k)}}); err != nil {
			t.Fatal(err)
		}
		st, err := os.Stat(seg)
		if err != nil {
			t.Fatal(err)
		}
		sizes = append(sizes, st.Size())
	}
	l.Close()
	f, err := os.OpenFile(seg, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte{0xff}, sizes[0]+30); err != nil { // batch "b"
		t.Fatal(err)
	}
	f.Close()
	if _, err := embedded.Open(dir, embedded.Options{}); err == nil || !strings.Contains(err.Error(), "wail log repair") {
		t.Fatalf("Open of the damaged log: %v", err)
	}

	code, out, errOut := runCLI(ctx, "", "", "log", "repair", data)
	if code != 0 || !strings.Contains(out, "lost t/0 offsets [1, 2)") || !strings.Contains(out, "#quarantine-00000000000000000000-") {
		t.Fatalf("log repair: code %d\n%s%s", code, out, errOut)
	}
	l, err = embedded.Open(dir, embedded.Options{})
	if err != nil {
		t.Fatalf("Open after repair: %v", err)
	}
	l.Close()
	code, out, _ = runCLI(ctx, "", "", "log", "repair", data)
	if code != 0 || !strings.Contains(out, "nothing to repair") {
		t.Fatalf("second log repair: code %d\n%s", code, out)
	}
	// A damaged #lost file: rebuilt, the gap listed again.
	lost := filepath.Join(dir, "t", "0", "#lost")
	if err := os.WriteFile(lost, []byte("junk"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := embedded.Open(dir, embedded.Options{}); err == nil || !strings.Contains(err.Error(), "wail log repair") {
		t.Fatalf("Open with a damaged #lost: %v", err)
	}
	code, out, errOut = runCLI(ctx, "", "", "log", "repair", data)
	if code != 0 || !strings.Contains(out, "rebuilt "+lost+": it was damaged (") ||
		!strings.Contains(out, "its bytes are kept in "+lost[:len(lost)-len("#lost")]+"#quarantine-lost-1") ||
		!strings.Contains(out, "lost t/0 offsets [1, 2)") {
		t.Fatalf("log repair of a damaged #lost: code %d\n%s%s", code, out, errOut)
	}
	if code, _, errOut := runCLI(ctx, "", "", "log", "repair", t.TempDir()); code != 1 || !strings.Contains(errOut, "holds no embedded log") {
		t.Fatalf("log repair of an empty directory: code %d, %s", code, errOut)
	}
}

// TestLogRepairOffsets: `wail log repair DATA_DIR` replaces consumer
// groups' damaged offsets files (which `wail serve` refuses to start with),
// prints where their bytes are kept and where each group starts again
// (each partition's first retained offset, below what it had committed),
// and what follows: for the resolvers of a table, what the replay costs
// and, since retention removed intents below the start, when to
// reconcile; for a consumer group, that it gets events again. The log
// opens afterwards, and a second run finds nothing.
func TestLogRepairOffsets(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	data := t.TempDir()
	dir := filepath.Join(data, "log")
	l, err := embedded.Open(dir, embedded.Options{SegmentBytes: 1024, RetentionCheckInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	intents, events := intent.Topic("orders"), eventbus.Topic("orders")
	if err := l.CreateTopic(ctx, intents, 2, intentlog.TopicOptions{RetentionBytes: 3000}); err != nil {
		t.Fatal(err)
	}
	if err := l.CreateTopic(ctx, events, 2, intentlog.TopicOptions{}); err != nil {
		t.Fatal(err)
	}
	for i := range 200 {
		for _, topic := range []string{intents, events} {
			if err := l.Append(ctx, topic, []*intentlog.Record{{Key: fmt.Appendf(nil, "key-%d", i), Value: []byte("value")}}); err != nil {
				t.Fatal(err)
			}
		}
	}
	var starts []string
	for p := range int32(2) {
		start, end, err := l.Bounds(ctx, intents, p)
		if err != nil || start == 0 {
			t.Fatalf("bounds of %s/%d: [%d, %d), %v; want retention to have removed the first intents", intents, p, start, end, err)
		}
		starts = append(starts, fmt.Sprintf("%d:%d", p, start))
		if err := l.Commit(ctx, "wail-resolver", intents, map[int32]int64{p: end}); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Commit(ctx, "wail.consumer.app", events, map[int32]int64{0: 10, 1: 10}); err != nil {
		t.Fatal(err)
	}
	l.Close()
	damaged := map[string]string{intents: "wail-resolver", events: "wail.consumer.app"}
	for topic, group := range damaged {
		if err := os.WriteFile(filepath.Join(dir, topic, "offsets", group), []byte("WOF1 damaged"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := embedded.Open(dir, embedded.Options{}); err == nil || !strings.Contains(err.Error(), "wail log repair") {
		t.Fatalf("Open of the damaged offsets files: %v", err)
	}

	code, out, errOut := runCLI(ctx, "", "", "log", "repair", data)
	offsets := func(topic, name string) string { return filepath.Join(dir, topic, "offsets", name) }
	for _, want := range []string{
		" 2 offsets files in ",
		"reset group wail-resolver of " + intents + ": " + offsets(intents, "wail-resolver") +
			" was damaged (offsets file crc mismatch); its bytes are kept in " + offsets(intents, "#quarantine-wail-resolver-1") +
			"\n  it starts again at each partition's first retained offset: " + strings.Join(starts, " ") + " (partition:offset)\n" +
			"  the resolvers resolve again every retained intent, publishing no version the event topic still holds;\n",
		"if the resolvers were behind by more than\n  log.retention when the file was damaged, run `wail table reconcile orders`",
		"reset group wail.consumer.app of " + events + ": " + offsets(events, "wail.consumer.app") +
			" was damaged (offsets file crc mismatch); its bytes are kept in " + offsets(events, "#quarantine-wail.consumer.app-1") +
			"\n  it starts again at each partition's first retained offset: 0:0 1:0 (partition:offset)\n" +
			"  it reads again what it had read: a consumer group gets those records again (at-least-once)\n",
	} {
		if code != 0 || !strings.Contains(out, want) {
			t.Fatalf("log repair: code %d, want %q in\n%s%s", code, want, out, errOut)
		}
	}
	for topic, group := range damaged {
		q := offsets(topic, "#quarantine-"+group+"-1")
		if b, err := os.ReadFile(q); err != nil || string(b) != "WOF1 damaged" {
			t.Fatalf("quarantine %s: %q, %v", q, b, err)
		}
	}
	l, err = embedded.Open(dir, embedded.Options{})
	if err != nil {
		t.Fatalf("Open after repair: %v", err)
	}
	got, err := l.Committed(ctx, "wail.consumer.app", events)
	l.Close()
	if err != nil || len(got) != 2 || got[0] != 0 || got[1] != 0 {
		t.Fatalf("committed after repair: %v, %v; want every partition at 0", got, err)
	}
	code, out, _ = runCLI(ctx, "", "", "log", "repair", data)
	if code != 0 || !strings.Contains(out, "nothing to repair") {
		t.Fatalf("second log repair: code %d\n%s", code, out)
	}
}
