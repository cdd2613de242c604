package eventbus

import (
	"errors"
	"testing"
	"time"
)

func TestParseStart(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want Start
		err  bool
	}{
		{in: "", want: Start{Latest: true, Offset: -1}},
		{in: "latest", want: Start{Latest: true, Offset: -1}},
		{in: "beginning", want: Start{Beginning: true, Offset: -1}},
		{in: "v42", want: Start{AfterVersion: 42, Offset: -1}},
		{in: "42", want: Start{AfterVersion: 42, Offset: -1}},
		{in: "@7", want: Start{Offset: 7}},
		{in: "@0", want: Start{Offset: 0}},
		{in: "earliest", want: Start{Beginning: true, Offset: -1}},
		{in: "v0", want: Start{Offset: -1}},
		{in: "@-1", err: true},
		{in: "@x", err: true},
		{in: "vx", err: true},
		{in: "yesterday", err: true},
		{in: "snapshot", want: Start{Snapshot: true, Offset: -1}},
		{in: "cAQmnwIoEAAGsAoCAgIAgdDYaTg", want: Start{Cursor: "cAQmnwIoEAAGsAoCAgIAgdDYaTg", Offset: -1}},
		{in: "-15m", want: Start{Ago: 15 * time.Minute, Offset: -1}},
		{in: "2026-11-30T14:00:00Z", want: Start{At: time.Date(2026, 11, 30, 14, 0, 0, 0, time.UTC), Offset: -1}},
		{in: "-0s", err: true},
		{in: "-x", err: true},
		{in: "2026-11-30T25:00:00Z", err: true},
		{in: "14:00", err: true},
	}
	for _, tc := range tests {
		got, err := ParseStart(tc.in)
		if tc.err {
			if !errors.Is(err, ErrBadFrom) {
				t.Errorf("ParseStart(%q) err = %v, want ErrBadFrom", tc.in, err)
			}
			continue
		}
		if err != nil || !got.At.Equal(tc.want.At) || got.Ago != tc.want.Ago || got.Cursor != tc.want.Cursor ||
			got.Beginning != tc.want.Beginning || got.Latest != tc.want.Latest || got.Snapshot != tc.want.Snapshot ||
			got.AfterVersion != tc.want.AfterVersion || got.Offset != tc.want.Offset {
			t.Errorf("ParseStart(%q) = %+v, %v; want %+v", tc.in, got, err, tc.want)
		}
	}
}
