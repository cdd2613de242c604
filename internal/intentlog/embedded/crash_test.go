package embedded

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wail-cdc/wail/internal/intentlog"
)

const (
	crashDirEnv = "WAIL_EMBEDDED_CRASH_DIR"
	crashParts  = 3
	crashAcks   = 400
)

// crashValue is the value the helper writes for key.
func crashValue(key string) []byte {
	return bytes.Repeat([]byte(key+";"), 1+len(key)%5*8)
}

// TestHelperProcess is the child of TestCrashRecovery: it appends forever
// (fsync on) and prints "ack <partition> <offset> <key>" for every record
// whose Append returned, until it is killed.
func TestHelperProcess(t *testing.T) {
	dir := os.Getenv(crashDirEnv)
	if dir == "" {
		t.Skip("only runs as the child of TestCrashRecovery")
	}
	time.AfterFunc(time.Minute, func() { os.Exit(2) }) // never outlive a dead parent long
	l, err := Open(dir, Options{SegmentBytes: 16 << 10, IndexIntervalBytes: 512})
	if err == nil {
		err = l.CreateTopic(context.Background(), testTopic, crashParts, intentlog.TopicOptions{})
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(3)
	}
	var out sync.Mutex
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := 0; ; i++ {
				recs := make([]*intentlog.Record, 1+w%2*4) // single records and batches of 5
				for j := range recs {
					key := fmt.Sprintf("w%d-%d-%d", w, i, j)
					recs[j] = &intentlog.Record{Key: []byte(key), Value: crashValue(key)}
				}
				if err := l.Append(context.Background(), testTopic, recs); err != nil {
					fmt.Fprintln(os.Stderr, err)
					os.Exit(4)
				}
				var b strings.Builder
				for _, r := range recs {
					fmt.Fprintf(&b, "ack %d %d %s\n", r.Partition, r.Offset, r.Key)
				}
				out.Lock()
				_, _ = os.Stdout.WriteString(b.String())
				out.Unlock()
			}
		})
	}
	wg.Wait()
}

// TestCrashRecovery SIGKILLs a process that is appending and checks that
// every acknowledged record survives, intact, with contiguous offsets.
//
// Not parallel: while the child is being forked it briefly shares every open
// file description of this process, including other tests' directory locks.
func TestCrashRecovery(t *testing.T) {
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$")
	cmd.Env = append(os.Environ(), crashDirEnv+"="+dir)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	noErr(t, err)
	noErr(t, cmd.Start())
	t.Cleanup(func() { _ = cmd.Process.Kill() })

	type at struct {
		p   int32
		off int64
	}
	acks := map[at]string{}
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		var a at
		var key string
		if _, err := fmt.Sscanf(sc.Text(), "ack %d %d %s", &a.p, &a.off, &key); err != nil {
			continue
		}
		acks[a] = key
		if len(acks) == crashAcks {
			noErr(t, cmd.Process.Kill()) // SIGKILL; acks already in the pipe still count
		}
	}
	err = cmd.Wait()
	if len(acks) < crashAcks {
		t.Fatalf("child exited (%v) after %d acks; stderr:\n%s", err, len(acks), stderr.String())
	}

	l := openLog(t, dir, Options{})
	defer l.Close()
	found, total := 0, 0
	for p := range int32(crashParts) {
		for _, rec := range readAll(t, l, p) { // checks offsets are contiguous from 0
			total++
			if want := crashValue(string(rec.Key)); !bytes.Equal(rec.Value, want) {
				t.Fatalf("partition %d offset %d key %q: value damaged", p, rec.Offset, rec.Key)
			}
			if key, ok := acks[at{p, rec.Offset}]; ok {
				if key != string(rec.Key) {
					t.Fatalf("partition %d offset %d: key %q, acknowledged %q", p, rec.Offset, rec.Key, key)
				}
				found++
			}
		}
	}
	if found != len(acks) {
		t.Fatalf("%d of %d acknowledged records missing after the crash", len(acks)-found, len(acks))
	}
	t.Logf("%d acknowledged records intact; %d records in all", len(acks), total)
}
