package intentlog

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

// bounds answers fixed bounds, or err.
type bounds struct {
	start, end int64
	err        error
}

func (b bounds) Bounds(context.Context, string, int32) (int64, int64, error) {
	return b.start, b.end, b.err
}

func TestPlaceOutOfRange(t *testing.T) {
	errDown := errors.New("broker down")
	for _, tc := range []struct {
		name    string
		b       bounds
		pos     int64
		tries   int
		want    Placement
		wantErr string // "" for none
		waits   bool   // pauses tries × 100 ms first
	}{
		{name: "below the start", b: bounds{start: 100, end: 200}, pos: 40, tries: OutOfRangeTries, want: BelowStart},
		{name: "past the end", b: bounds{start: 100, end: 200}, pos: 201, tries: OutOfRangeTries, want: PastEnd},
		{name: "at the end is within", b: bounds{start: 100, end: 200}, pos: 200, tries: 1, want: Within, waits: true},
		{name: "at the start is within", b: bounds{start: 100, end: 200}, pos: 100, tries: 1, want: Within, waits: true},
		{name: "within, out of tries", b: bounds{start: 100, end: 200}, pos: 150, tries: OutOfRangeTries,
			wantErr: "read t/3 at 150: answered out of range 5 times in a row, within the log's bounds [100, 200]: offset out of range"},
		{name: "bounds unreadable", b: bounds{err: errDown}, pos: 150, tries: 1,
			wantErr: "read t/3 at 150: offset out of range; bounds: broker down"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			began := time.Now()
			o, err := PlaceOutOfRange(context.Background(), tc.b, "t", 3, tc.pos, ErrOffsetOutOfRange, tc.tries)
			if tc.wantErr != "" {
				if err == nil || err.Error() != tc.wantErr || !errors.Is(err, ErrOffsetOutOfRange) {
					t.Fatalf("err = %v, want %q wrapping ErrOffsetOutOfRange", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if o.Placement != tc.want || o.Start != tc.b.start || o.End != tc.b.end {
				t.Fatalf("placed %+v, want %v in [%d, %d]", o, tc.want, tc.b.start, tc.b.end)
			}
			if waited := time.Since(began); tc.waits != (waited >= time.Duration(tc.tries)*100*time.Millisecond) {
				t.Fatalf("waited %v; want a pause of %d × 100 ms: %v", waited, tc.tries, tc.waits)
			}
		})
	}
}

// A reader whose context ends during the pause gets the context's error
// at once.
func TestPlaceOutOfRangeCanceled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(20*time.Millisecond, cancel)
	_, err := PlaceOutOfRange(ctx, bounds{start: 0, end: 10}, "t", 0, 5, ErrOffsetOutOfRange, 4)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if strings.Contains(err.Error(), "bounds") {
		t.Fatalf("err = %v", err)
	}
}
