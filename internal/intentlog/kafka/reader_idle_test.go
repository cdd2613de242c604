package kafka

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/wail-cdc/wail/internal/intentlog"
)

// holdsClient reports whether rd holds a client.
func holdsClient(rd intentlog.Reader) bool {
	r := rd.(*reader)
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.cl != nil
}

// waitReleased waits until rd let its client go.
func waitReleased(t *testing.T, rd intentlog.Reader) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); holdsClient(rd); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("an idle reader still holds its client (and the fetch it buffered ahead) after 10s")
		}
	}
}

// TestIdleReaderReleasesItsClient: a reader whose caller stopped calling
// Next (an event stream whose client reads nothing, once its read-ahead
// is full) lets its client go after Options.ReaderIdle, and with it the
// fetch the client buffered ahead (up to readerFetchBytes per partition,
// uncounted by any budget) and its connections; before, every partition
// of every stalled stream held them for as long as the stream stayed
// open. The next Next goes on at exactly its position, and a topic
// deleted and created again meanwhile fails it (the new client would
// otherwise read the new topic from the old topic's position).
func TestIdleReaderReleasesItsClient(t *testing.T) {
	brokers := realBrokers(t)
	ctx := testCtx(t, 2*time.Minute)
	l := openLog(t, brokers, func(o *Options) { o.ReaderIdle = 200 * time.Millisecond })
	topic := topicName("idle")
	newJanitor(t, brokers).add(topic)
	if err := l.CreateTopic(ctx, topic, 1, intentlog.TopicOptions{}); err != nil {
		t.Fatal(err)
	}
	const n = 3000
	value := make([]byte, 1024) // 3 MB: more than one fetch
	for i := 0; i < n; i += 100 {
		batch := make([]*intentlog.Record, 0, 100)
		for j := i; j < i+100; j++ {
			batch = append(batch, &intentlog.Record{Key: fmt.Appendf(nil, "k%d", j), Value: value})
		}
		if err := l.Append(ctx, topic, batch); err != nil {
			t.Fatal(err)
		}
	}
	rd, err := l.NewReader(topic, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	var got []int64
	read := func() {
		t.Helper()
		recs, err := rd.Next(ctx)
		if err != nil {
			t.Fatalf("Next at %d: %v", rd.Position(), err)
		}
		for _, r := range recs {
			got = append(got, r.Offset)
		}
	}
	read()
	if got[len(got)-1] >= n-1 {
		t.Fatalf("one fetch returned all %d records; the test needs more than one", n)
	}
	waitReleased(t, rd)
	for rd.Position() < n {
		read()
		waitReleased(t, rd) // every pause lets it go again
	}
	for i, o := range got {
		if o != int64(i) {
			t.Fatalf("record %d has offset %d: records were skipped or repeated across releases", i, o)
		}
	}

	// Deleted and created again while released: the reader must not read
	// the new topic from the old one's position.
	if err := l.DeleteTopic(ctx, topic); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		err := l.CreateTopic(ctx, topic, 1, intentlog.TopicOptions{})
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("create again: %v", err)
		}
	}
	for i := 0; i < n+10; i += 500 {
		batch := make([]*intentlog.Record, 0, 500)
		for j := i; j < i+500; j++ {
			batch = append(batch, &intentlog.Record{Key: fmt.Appendf(nil, "new%d", j), Value: []byte("v")})
		}
		if err := l.Append(ctx, topic, batch); err != nil {
			t.Fatal(err)
		}
	}
	nctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	recs, err := rd.Next(nctx)
	if !errors.Is(err, intentlog.ErrUnknownTopic) {
		first := ""
		if len(recs) > 0 {
			first = keysAt(recs[:1])
		}
		t.Fatalf("Next after the topic was created again = %d records (the first %s), %v; want ErrUnknownTopic", len(recs), first, err)
	}
}

// TestIdleReadersMemory logs what readers stalled with a fetch buffered
// ahead hold, and what they hold once released (not asserted: the heap
// is the process's).
func TestIdleReadersMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("-short")
	}
	brokers := realBrokers(t)
	ctx := testCtx(t, 2*time.Minute)
	l := openLog(t, brokers, func(o *Options) { o.ReaderIdle = time.Second })
	topic := topicName("idlemem")
	newJanitor(t, brokers).add(topic)
	const parts = 8
	if err := l.CreateTopic(ctx, topic, parts, intentlog.TopicOptions{}); err != nil {
		t.Fatal(err)
	}
	value := make([]byte, 1024)
	for i := 0; i < 16000; i += 200 {
		batch := make([]*intentlog.Record, 0, 200)
		for j := i; j < i+200; j++ {
			batch = append(batch, &intentlog.Record{Key: fmt.Appendf(nil, "k%d", j), Value: value})
		}
		if err := l.Append(ctx, topic, batch); err != nil {
			t.Fatal(err)
		}
	}
	heap := func() uint64 {
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return m.HeapInuse
	}
	base := heap()
	var rds []intentlog.Reader
	for s := 0; s < 4; s++ { // four stalled streams
		for p := int32(0); p < parts; p++ {
			rd, err := l.NewReader(topic, p, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer rd.Close()
			if _, err := rd.Next(ctx); err != nil {
				t.Fatal(err)
			}
			rds = append(rds, rd)
		}
	}
	time.Sleep(300 * time.Millisecond) // the fetches ahead land
	held := heap()
	t.Logf("%d readers, one Next each: heap +%.1f MiB", len(rds), float64(held-base)/(1<<20))
	for _, rd := range rds {
		waitReleased(t, rd)
	}
	t.Logf("released: heap +%.1f MiB", float64(int64(heap())-int64(base))/(1<<20))
}
