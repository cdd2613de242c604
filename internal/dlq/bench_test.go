package dlq

import (
	"fmt"
	"testing"

	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
)

// BenchmarkList lists the last page of a topic of 100k dead letters, half
// of them settled: the fold of every record, then the page. It reports
// records folded per second.
func BenchmarkList(b *testing.B) {
	const letters = 100_000
	log := openLog(b)
	q := NewQueue(log, "t", 0)
	for lo := 0; lo < letters; lo += 1000 {
		var ls []*wailv1.DeadLetter
		for i := lo; i < lo+1000; i++ {
			ls = append(ls, letter(fmt.Sprintf("k%d", i), 0))
		}
		offs := appendLetters(b, log, ls...)
		var res []*wailv1.DeadLetterResolution
		for _, off := range offs[:500] {
			res = append(res, &wailv1.DeadLetterResolution{Offset: off, Action: wailv1.DeadLetterAction_DEAD_LETTER_ACTION_DROPPED})
		}
		if err := q.Settle(b.Context(), res); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	for b.Loop() {
		page, _, err := q.List(b.Context(), ListOptions{After: 149_000})
		if err != nil || len(page) != 100 {
			b.Fatalf("%d letters, %v", len(page), err)
		}
	}
	b.ReportMetric(float64(150_000*b.N)/b.Elapsed().Seconds(), "records/s")
}
