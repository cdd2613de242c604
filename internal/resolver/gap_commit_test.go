package resolver

import (
	"context"
	"strings"
	"testing"
	"time"
)

// TestRecordGapCommits: recordGap commits past the gap before the
// partition goes on, with the plain publisher (letter and commit in two
// steps) too: after the gap letter it writes, and when an earlier run
// wrote it (from >= to: only the commit, and nothing said again).
func TestRecordGapCommits(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	env := newTestEnv(ctx, t, "gapcommit")
	logger, logs := testLogger()
	// The gap's intents are gone and none came after them: the offsets
	// committed are past the log's end, which a Kafka broker takes (the
	// embedded log refuses them).
	lg := newPastEndCommits(env.log)
	r := New(lg, env.st, env.bus, testConfig(logger, nil))
	pub := newPlainPublisher(r, env.tb.Name, 0)
	for _, tc := range []struct {
		from, to int64
		logged   bool // the gap is said (once, by the run that writes its letter)
	}{{2, 5, true}, {9, 9, false}} {
		before := len(logs.String())
		if err := r.recordGap(ctx, pub, env.tb.Name, 0, tc.from, tc.to); err != nil {
			t.Fatal(err)
		}
		if c := committedAt(ctx, t, lg, env.tb); c != tc.to {
			t.Fatalf("gap [%d, %d): committed %d, want %d", tc.from, tc.to, c, tc.to)
		}
		if said := logs.String()[before:]; strings.Contains(said, "retention removed intents") != tc.logged {
			t.Fatalf("gap [%d, %d): logged %q, want the gap said: %v", tc.from, tc.to, said, tc.logged)
		}
	}
	if ls := readLetters(ctx, t, env.log, env.tb.Name); len(ls) != 1 || ls[0].GapStartOffset != 2 || ls[0].GapEndOffset != 5 {
		t.Fatalf("gap letters %v, want one of [2, 5)", ls)
	}
}
