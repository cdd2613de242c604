package kafka

import (
	"bytes"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/wail-cdc/wail/internal/intentlog"
)

// TestReaderReadsRecordOverFetchLimit: a reader fetches readerFetchBytes
// at once, and still reads a record larger than that (up to
// max_message_bytes), whole, and what follows it.
func TestReaderReadsRecordOverFetchLimit(t *testing.T) {
	forBoth(t, func(t *testing.T, brokers []string, name func(string) string) {
		l := openLog(t, brokers, nil)
		ctx := testCtx(t, 30*time.Second)
		topic := name("over-fetch")
		if err := l.CreateTopic(ctx, topic, 1, intentlog.TopicOptions{}); err != nil {
			t.Fatal(err)
		}
		big := make([]byte, 3*readerFetchBytes) // random: not compressed below the limit
		for i := range big {
			big[i] = byte(rand.Uint32())
		}
		want := [][]byte{[]byte("before"), big, []byte("after")}
		for _, v := range want {
			if err := l.Append(ctx, topic, []*intentlog.Record{{Key: []byte("k"), Value: v}}); err != nil {
				t.Fatal(err)
			}
		}
		r, err := l.NewReader(topic, 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		var got [][]byte
		for len(got) < len(want) {
			recs, err := r.Next(ctx)
			if err != nil {
				t.Fatalf("after %d records: %v", len(got), err)
			}
			for _, rec := range recs {
				if rec.Value != nil {
					got = append(got, rec.Value)
				}
			}
		}
		for i := range want {
			if !bytes.Equal(got[i], want[i]) {
				t.Fatalf("record %d: %d bytes, want %d", i, len(got[i]), len(want[i]))
			}
		}
	})
}
