package cli

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wail-cdc/wail/internal/intentlog"
	"github.com/wail-cdc/wail/internal/intentlog/embedded"
)

// TestLogRepair: `wail log repair DATA_DIR` on a log with a damaged batch
// followed by valid ones prints the lost offsets and the quarantine file;
// the log opens afterwards; a second run finds nothing.
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
	if code, _, errOut := runCLI(ctx, "", "", "log", "repair", t.TempDir()); code != 1 || !strings.Contains(errOut, "holds no embedded log") {
		t.Fatalf("log repair of an empty directory: code %d, %s", code, errOut)
	}
}
