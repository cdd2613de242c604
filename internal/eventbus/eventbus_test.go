package eventbus

import (
	"errors"
	"testing"
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
	}
	for _, tc := range tests {
		got, err := ParseStart(tc.in)
		if tc.err {
			if !errors.Is(err, ErrBadFrom) {
				t.Errorf("ParseStart(%q) err = %v, want ErrBadFrom", tc.in, err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("ParseStart(%q) = %+v, %v; want %+v", tc.in, got, err, tc.want)
		}
	}
}
