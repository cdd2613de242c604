package embedded

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/wail-cdc/wail/internal/intentlog"
	"github.com/wail-cdc/wail/internal/vfs"
)

// countingFS counts the segment (.log) files open at once, the most at
// once, and how many were opened in all.
type countingFS struct {
	vfs.FS
	mu               sync.Mutex
	open, max, total int
}

type countedFile struct {
	vfs.File
	c    *countingFS
	once sync.Once
}

func (c *countingFS) OpenFile(name string, flag int, perm os.FileMode) (vfs.File, error) {
	f, err := c.FS.OpenFile(name, flag, perm)
	if err != nil || !strings.HasSuffix(name, logExt) {
		return f, err
	}
	c.mu.Lock()
	c.open++
	c.total++
	c.max = max(c.max, c.open)
	c.mu.Unlock()
	return &countedFile{File: f, c: c}, nil
}

func (f *countedFile) Close() error {
	f.once.Do(func() {
		f.c.mu.Lock()
		f.c.open--
		f.c.mu.Unlock()
	})
	return f.File.Close()
}

// manyRecords returns n records whose keys spread over every partition.
func manyRecords(tag string, n int) []*intentlog.Record {
	recs := make([]*intentlog.Record, n)
	for i := range recs {
		key := fmt.Sprintf("%s-%d", tag, i)
		recs[i] = &intentlog.Record{Key: []byte(key), Value: []byte("value of " + key)}
	}
	return recs
}

// readEverything reads every partition of topic to its end and returns
// how many records it holds.
func readEverything(t testing.TB, l *Log, topic string) int {
	t.Helper()
	n, err := l.Partitions(context.Background(), topic)
	noErr(t, err)
	total := 0
	for p := range n {
		start, end, err := l.Bounds(context.Background(), topic, p)
		noErr(t, err)
		r, err := l.NewReader(topic, p, start)
		noErr(t, err)
		for r.Position() < end {
			recs, err := r.Next(context.Background())
			noErr(t, err)
			total += len(recs)
		}
		noErr(t, r.Close())
	}
	return total
}

// TestOpenFileBudget: with 64 partitions of several segments each (far
// more files than the budget), concurrent appenders and readers never have
// more than MaxOpenFiles segment files open, and everything stays
// readable, also after a reopen.
func TestOpenFileBudget(t *testing.T) {
	t.Parallel()
	const budget, parts, writers, appends, perAppend = 8, 64, 8, 10, 48
	cfs := &countingFS{FS: vfs.Default}
	dir := t.TempDir()
	opts := Options{FS: cfs, MaxOpenFiles: budget, SegmentBytes: 512, NoSync: true}
	l := openLog(t, dir, opts)
	createTestTopic(t, l, parts, intentlog.TopicOptions{})
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range appends {
				if err := l.Append(context.Background(), testTopic, manyRecords(fmt.Sprint(w, "-", i), perAppend)); err != nil {
					t.Errorf("Append: %v", err)
					return
				}
			}
		})
	}
	wg.Go(func() {
		for range 3 {
			readEverything(t, l, testTopic)
		}
	})
	wg.Wait()
	const total = writers * appends * perAppend
	if n := readEverything(t, l, testTopic); n != total {
		t.Fatalf("%d records read, want %d", n, total)
	}
	if segs := len(segmentFiles(t, dir, 0, logExt)); segs < 3 {
		t.Fatalf("partition 0 has %d segments; the test wants several", segs)
	}
	noErr(t, l.Close())
	l = openLog(t, dir, opts)
	defer l.Close()
	if n := readEverything(t, l, testTopic); n != total {
		t.Fatalf("after reopen: %d records read, want %d", n, total)
	}
	cfs.mu.Lock()
	defer cfs.mu.Unlock()
	if cfs.max > budget || cfs.max == 0 {
		t.Fatalf("up to %d segment files open at once, budget %d", cfs.max, budget)
	}
	t.Logf("at most %d segment files open at once (budget %d) over %d partitions", cfs.max, budget, parts)
}

const fdChildEnv = "WAIL_EMBEDDED_FD_CHILD_DIR"

// TestHelperManyPartitions is the child of TestManyPartitionsLowRlimit.
func TestHelperManyPartitions(t *testing.T) {
	dir := os.Getenv(fdChildEnv)
	if dir == "" {
		t.Skip("only runs as the child of TestManyPartitionsLowRlimit")
	}
	lim := syscall.Rlimit{Cur: 256, Max: 256}
	noErr(t, syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim))
	// 768 segment files: three times the limit.
	const topics, parts = 2, 384
	open := func() *Log { return openLog(t, dir, Options{NoSync: true}) } // default budget: 64 under 256
	l := open()
	for round := range 2 {
		for i := range topics {
			topic := fmt.Sprint("table-", i)
			if round == 0 {
				noErr(t, l.CreateTopic(context.Background(), topic, parts, intentlog.TopicOptions{}))
			}
			noErr(t, l.Append(context.Background(), topic, manyRecords(fmt.Sprint(round), 4*parts)))
			if n := readEverything(t, l, topic); n != (round+1)*4*parts {
				t.Fatalf("round %d: %s holds %d records, want %d", round, topic, n, (round+1)*4*parts)
			}
		}
		noErr(t, l.Close())
		l = open()
	}
	noErr(t, l.Close())
	fmt.Println("many-partitions-ok")
}

// TestManyPartitionsLowRlimit creates 2 tables of 384 partitions (768
// segment files, three times the limit: the old one-descriptor-per-file
// layout fails) in a child process whose RLIMIT_NOFILE is 256, appends to
// and reads every partition twice and reopens the log.
func TestManyPartitionsLowRlimit(t *testing.T) {
	if testing.Short() {
		t.Skip("slow: 768 partitions in a child process")
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperManyPartitions$", "-test.v")
	cmd.Env = append(os.Environ(), fdChildEnv+"="+t.TempDir())
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "many-partitions-ok") {
		t.Fatalf("child: %v\n%s", err, out)
	}
}
