package resolver

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/wail-cdc/wail/internal/intent"
)

// TestRetentionGapLetterOnceAcrossCrash: the resolver writes the gap
// letter of a retention gap, then crashes (or its commit fails) before its
// commit passes the gap; the next run does not write the letter again (it
// did: each restart added one).
func TestRetentionGapLetterOnceAcrossCrash(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	env := retentionEnv(ctx, t, "gapx")
	if err := env.log.Commit(ctx, "g", intent.Topic("gapx"), map[int32]int64{0: 0}); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 200; i++ {
		env.write(ctx, t, fmt.Sprintf("k%d", i%20), uint64(i+1), "v")
	}
	logStart, end, err := env.log.Bounds(ctx, intent.Topic("gapx"), 0)
	if err != nil || logStart == 0 {
		t.Fatalf("retention removed nothing: start %d, %v", logStart, err)
	}
	logger, _ := testLogger()
	frozen := &commitFreezer{Log: env.log, frozen: true}
	run := start(ctx, New(frozen, env.st, env.bus, testConfig(logger, NewMetrics(nil))), env.tb)
	waitUntil(ctx, t, "the gap letter written", func() bool { return len(readLetters(ctx, t, env.log, "gapx")) >= 1 })
	run.cancel()
	<-run.done
	run = start(ctx, New(env.log, env.st, env.bus, testConfig(logger, NewMetrics(nil))), env.tb)
	waitUntil(ctx, t, "the rest resolved", func() bool { return committedAt(ctx, t, env.log, env.tb) == end })
	run.stop(t)
	if ls := readLetters(ctx, t, env.log, "gapx"); len(ls) != 1 {
		for _, l := range ls {
			t.Logf("letter: gap [%d, %d)", l.GapStartOffset, l.GapEndOffset)
		}
		t.Fatalf("%d gap letters for one gap [0, %d), want 1", len(ls), logStart)
	}
}
