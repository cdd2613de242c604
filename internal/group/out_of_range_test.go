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

	"github.com/prometheus/client_golang/prometheus"

	"github.com/wail-cdc/wail/internal/intentlog"
)

// rangeFaults is a log whose readers answer as Kafka's after its log
// changed under them: a reader at offset at fails its first Next with
// ErrOffsetOutOfRange (Kafka's NewReader never fails: its first fetch
// does), times times (-1: always); Bounds answers start and end (while
// set) instead of the log's.
type rangeFaults struct {
	intentlog.Log
	mu         sync.Mutex
	at         int64
	times      int
	start, end int64
	bounds     bool
}

func (l *rangeFaults) NewReader(topic string, p int32, off int64) (intentlog.Reader, error) {
	r, err := l.Log.NewReader(topic, p, off)
	if err != nil {
		return nil, err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if off == l.at && l.times != 0 {
		l.times--
		return faultyReader{r}, nil
	}
	return r, nil
}

func (l *rangeFaults) Bounds(ctx context.Context, topic string, p int32) (int64, int64, error) {
	l.mu.Lock()
	start, end, set := l.start, l.end, l.bounds
	l.mu.Unlock()
	if set {
		return start, end, nil
	}
	return l.Log.Bounds(ctx, topic, p)
}

type faultyReader struct{ intentlog.Reader }

func (r faultyReader) Next(context.Context) ([]intentlog.Record, error) {
	return nil, intentlog.ErrOffsetOutOfRange
}

// TestReadOutOfRange: a member's read that the log answers out of range
// (Kafka: OFFSET_OUT_OF_RANGE at its first fetch) restarted at the log's
// start under the same epoch, whatever the log's bounds: after an
// unclean leader election (the log's end now below the group's position)
// it delivered the whole partition again, silently; an answer out of
// range for a position within the bounds (a leader not caught up yet)
// did the same. Now: past the end, the member ends with ErrPositionLost
// (what to do in the error, and logged), nothing delivered; within the
// bounds, it reads on from its position; below the start (retention),
// it goes on from the start, logs what was skipped and tells the member:
// a message with the gap (and Next past it, to acknowledge) before the
// records past it.
func TestReadOutOfRange(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name       string
		times      int
		start, end int64 // Bounds' answer (end -1: the log's)
		first      int64 // the first offset delivered (-1: the member ends)
		logged     string
		gap        *Gap // told before the first batch
	}{
		{name: "past the end", times: -1, start: 0, end: 5, first: -1, logged: "wail group reset"},
		{name: "within the bounds", times: 2, start: 0, end: -1, first: 10},
		{name: "below the start", times: 1, start: 15, end: -1, first: 15, logged: "skipped 5", gap: &Gap{From: 10, To: 15}},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			base := openLog(t)
			tb := table(t, base, 1, 10)
			_, end, err := base.Bounds(ctx, tb.Topic, 0)
			if err != nil {
				t.Fatal(err)
			}
			if c.end < 0 {
				c.end = end
			}
			if err := base.Commit(ctx, LogGroup("g"), tb.Topic, map[int32]int64{0: 10}); err != nil {
				t.Fatal(err)
			}
			l := &rangeFaults{Log: base, at: 10, times: c.times, start: c.start, end: c.end, bounds: true}
			var logs bytes.Buffer
			var logMu sync.Mutex
			reg := prometheus.NewRegistry()
			G := New(l, time.Minute).WithLogger(slog.New(slog.NewTextHandler(lockedWriter{&logs, &logMu}, nil))).WithRetentionGaps(NewRetentionGaps(reg))
			defer G.Close()
			s, err := G.Join(ctx, tb, "g", "a", false)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Leave()
			grant := next(t, s)
			if len(grant.Granted) != 1 || grant.Granted[0].Offset != 10 {
				t.Fatalf("first message %+v, want the grant at 10", grant)
			}
			nctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			defer cancel()
			m, err := s.Next(nctx)
			if c.gap != nil && err == nil {
				if m.Gap == nil || *m.Gap != *c.gap || len(m.Records) > 0 || m.Next != c.gap.To || m.Epoch != grant.Granted[0].Epoch || m.Partition != 0 {
					t.Fatalf("first message after the grant %+v (gap %+v), want the gap %+v alone, Next %d at the grant's epoch", m, m.Gap, c.gap, c.gap.To)
				}
				if !s.Check(m) {
					t.Fatalf("the gap's message was refused by Check")
				}
				m, err = s.Next(nctx)
			}
			switch {
			case c.first < 0 && err == nil:
				t.Fatalf("a batch from offset %d (delivered again from the start?), want the member ended", m.Records[0].Offset)
			case c.first < 0:
				if !errors.Is(err, ErrPositionLost) || !errors.Is(err, intentlog.ErrOffsetOutOfRange) || !strings.Contains(err.Error(), "wail group reset") {
					t.Fatalf("the member ended with %v, want ErrPositionLost saying to reset the group", err)
				}
			case err != nil:
				t.Fatalf("next: %v", err)
			case len(m.Records) == 0:
				t.Fatalf("first batch %+v, want records from offset %d", m, c.first)
			case m.Records[0].Offset != c.first:
				t.Fatalf("first batch from offset %d, want from %d", m.Records[0].Offset, c.first)
			}
			// The gap is counted, by table and group, with its offsets.
			var wantGaps, wantSkipped float64
			if c.gap != nil {
				wantGaps, wantSkipped = 1, float64(c.gap.To-c.gap.From)
			}
			if g, o := gatheredCounter(t, reg, "wail_stream_retention_gaps_total", tb.Name, "g"),
				gatheredCounter(t, reg, "wail_stream_retention_skipped_offsets_total", tb.Name, "g"); g != wantGaps || o != wantSkipped {
				t.Errorf("wail_stream_retention_gaps_total %v, skipped offsets %v; want %v and %v", g, o, wantGaps, wantSkipped)
			}
			logMu.Lock()
			got := logs.String()
			logMu.Unlock()
			if c.logged != "" && !strings.Contains(got, c.logged) {
				t.Fatalf("log %q, want %q in it", got, c.logged)
			}
		})
	}
}

// gatheredCounter is the value of counter name{table, group} in reg (0: none).
func gatheredCounter(t *testing.T, reg *prometheus.Registry, name, table, grp string) float64 {
	t.Helper()
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		for _, m := range f.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if f.GetName() == name && labels["table"] == table && labels["group"] == grp {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}

type lockedWriter struct {
	b  *bytes.Buffer
	mu *sync.Mutex
}

func (w lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}
