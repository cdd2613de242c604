package dlq

import (
	"fmt"
	"strings"
	"testing"

	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
)

// TestOpenPagesAtMaxBytes: Open with all hands its callback pages of at
// most MaxBytes of letters (as encoded in the topic), to the byte: five
// letters of MaxBytes together go in one page, and when they are a byte
// more the fifth goes in the next page.
func TestOpenPagesAtMaxBytes(t *testing.T) {
	t.Parallel()
	encoded := func(l *wailv1.DeadLetter) int {
		r, err := LetterRecord(l)
		if err != nil {
			t.Fatal(err)
		}
		return len(r.Value)
	}
	for _, tc := range []struct {
		over  int   // the five letters' bytes past MaxBytes
		pages []int // letters per page
	}{
		{0, []int{5, 1}},
		{1, []int{4, 2}},
	} {
		t.Run(fmt.Sprint(tc.over), func(t *testing.T) {
			t.Parallel()
			log := openLog(t)
			q := NewQueue(log, "t", 0)
			var letters []*wailv1.DeadLetter
			size := 0
			for i := range 4 { // a record takes at most 1 MiB
				l := letter(fmt.Sprintf("big%d", i), 0)
				l.Error = strings.Repeat("x", 900<<10)
				letters = append(letters, l)
				size += encoded(l)
			}
			last := letter("big4", 0)
			last.Error = strings.Repeat("x", MaxBytes-size-100)
			for encoded(last) < MaxBytes+tc.over-size {
				last.Error += "x"
			}
			if size+encoded(last) != MaxBytes+tc.over {
				t.Fatalf("cannot build letters of %d bytes together", MaxBytes+tc.over)
			}
			letters = append(letters, last, letter("small", 0))
			appendLetters(t, log, letters...)
			var pages []int
			if _, err := q.Open(t.Context(), Selection{All: true}, func(page []*wailv1.DeadLetterEntry) error {
				pages = append(pages, len(page))
				return nil
			}); err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(pages) != fmt.Sprint(tc.pages) {
				t.Errorf("letters of %d bytes, then a small one: pages of %v letters, want %v", MaxBytes+tc.over, pages, tc.pages)
			}
		})
	}
}
