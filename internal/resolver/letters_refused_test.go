package resolver

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"

	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
)

// TestLettersRefusedFirstFitting: a letter the dead-letter topic refused
// as too large although its record fits the limit as read (exactly) is, at the
// first refusal in a row, taken for a limit the broker had not answered
// yet: cut again and written again, nothing counted; refused again, it
// cannot fit: counted too large, and the partition says which key.
func TestLettersRefusedFirstFitting(t *testing.T) {
	t.Parallel()
	logger, _ := testLogger()
	cfg := testConfig(logger, NewMetrics(nil))
	r := New(nil, nil, nil, cfg)
	l := newLoop(r, "refused", 0, nil)
	l.m = cfg.Metrics.partition("refused", 0, 1)
	d := &wailv1.DeadLetter{Table: "refused", Key: []byte("k"), Kind: wailv1.DeadLetterKind_DEAD_LETTER_KIND_READ,
		Intents: []*wailv1.Intent{{Version: 1}}, IntentOffsets: []int64{0}}
	l.letterRecord = letterBytes(d) // it fits exactly
	j := &pubJob{letters: []Letter{{Key: []byte("k")}}, records: []*wailv1.DeadLetter{d}}
	tooLarge := cfg.Metrics.lettersTooLarge.WithLabelValues("refused")
	l.lettersRefused(j, false)
	if n := testutil.ToFloat64(tooLarge); n != 0 || l.letterTooLarge != "" {
		t.Fatalf("first refusal of a letter that fits: counted %v, key %q; want nothing", n, l.letterTooLarge)
	}
	l.lettersRefused(j, false)
	if n := testutil.ToFloat64(tooLarge); n != 1 || l.letterTooLarge != "k" {
		t.Fatalf("second refusal in a row: counted %v, key %q; want 1 and k", n, l.letterTooLarge)
	}
}
