package dlq

import (
	"math"
	"testing"
)

// TestListAfterLast: paging past the last offset there can be lists
// nothing; after_offset = MaxInt64 wrapped to the start of the topic.
func TestListAfterLast(t *testing.T) {
	log := openLog(t)
	appendLetters(t, log, letter("a", 0), letter("b", 0))
	q := NewQueue(log, "t", 0)
	got, more, err := q.List(t.Context(), ListOptions{After: math.MaxInt64})
	if err != nil || len(got) != 0 || more {
		t.Fatalf("List(after=MaxInt64) = %v, more %v, %v; want nothing", offsetsOf(got), more, err)
	}
}
