package group

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wail-cdc/wail/internal/intentlog"
)

// truncatingLog is a log whose reader from offset at fails, once it read
// up to read, as Kafka's does after an unclean leader election cut the
// partition below what it read: a *intentlog.Truncation from offset from.
type truncatingLog struct {
	intentlog.Log
	at, from, read int64
}

func (l *truncatingLog) NewReader(topic string, p int32, off int64) (intentlog.Reader, error) {
	r, err := l.Log.NewReader(topic, p, off)
	if err != nil || off != l.at {
		return r, err
	}
	return truncatedReader{Reader: r, tr: &intentlog.Truncation{From: l.from, Read: l.read, Epoch: -1, Err: errors.New("kgo: data loss")}}, nil
}

type truncatedReader struct {
	intentlog.Reader
	tr *intentlog.Truncation
}

func (r truncatedReader) Next(ctx context.Context) ([]intentlog.Record, error) {
	if r.Position() >= r.tr.Read {
		return nil, r.tr
	}
	return r.Reader.Next(ctx)
}

// TestReadTruncated: the event partition a member reads lost events below
// its position (Kafka: an unclean leader election, found by the client's
// leader-epoch check), and new events take those offsets again. The
// member ended with the log's error, nothing logged: a member joining
// again starts at the group's committed offset, and when the group had
// committed past where the log diverges, the new events below it were
// never delivered, silently. Now that ends the member with
// ErrPositionLost (a client does not join again by itself) naming the
// offset where the log diverges, the group's committed offset and `wail
// group reset`; a committed offset not past it ends it with the
// truncation (a client joins again and reads the new events; at the
// offset where it diverges too, the first new event's). Both are
// logged as errors.
func TestReadTruncated(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name      string
		committed int64
		lost      bool
		says      []string
	}{
		{"committed past the divergence", 8, true, []string{"diverges from offset 5", "committed offset 8 is past it", "wail group reset"}},
		{"committed below it", 3, false, []string{"diverges from offset 5", "committed offset 3 is not past it"}},
		{"committed at it", 5, false, []string{"diverges from offset 5", "committed offset 5 is not past it"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			base := openLog(t)
			tb := table(t, base, 1, 10)
			if err := base.Commit(ctx, LogGroup("g"), tb.Topic, map[int32]int64{0: c.committed}); err != nil {
				t.Fatal(err)
			}
			l := &truncatingLog{Log: base, at: c.committed, from: 5, read: 10}
			var logs bytes.Buffer
			var logMu sync.Mutex
			G := New(l, time.Minute).WithLogger(slog.New(slog.NewTextHandler(lockedWriter{&logs, &logMu}, nil)))
			defer G.Close()
			s, err := G.Join(ctx, tb, "g", "a", false)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Leave()
			if m := next(t, s); len(m.Granted) != 1 || m.Granted[0].Offset != c.committed {
				t.Fatalf("first message %+v, want the grant at %d", m, c.committed)
			}
			nctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			defer cancel()
			for err == nil {
				_, err = s.Next(nctx) // the records before the truncation, then the end
			}
			if errors.Is(err, ErrPositionLost) != c.lost || !errors.Is(err, intentlog.ErrTruncated) {
				t.Fatalf("the member ended with %v; want the truncation, ErrPositionLost %v", err, c.lost)
			}
			for _, want := range c.says {
				if !strings.Contains(err.Error(), want) {
					t.Fatalf("the member's error %q does not say %q", err, want)
				}
			}
			logMu.Lock() // logged before the member is ended
			got := logs.String()
			logMu.Unlock()
			if !strings.Contains(got, "level=ERROR") || !strings.Contains(got, "diverges from offset 5") {
				t.Fatalf("log %q, want the error", got)
			}
		})
	}
}
