package eventbus

import (
	"errors"
	"testing"
)

// FuzzParseStart: a Subscribe's from is a client's: whatever it is,
// parsing it does not panic, a refusal is ErrBadFrom, and a start taken
// is exactly one kind of start.
func FuzzParseStart(f *testing.F) {
	for _, s := range []string{"", "latest", "beginning", "earliest", "snapshot", "-5m", "-0s", "2024-01-02T03:04:05Z",
		"@12", "@-1", "v7", "42", "v", "-", "@", cursorPrefix + "AAAA"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		st, err := ParseStart(s)
		if err != nil {
			if !errors.Is(err, ErrBadFrom) {
				t.Fatalf("%q: %v, not ErrBadFrom", s, err)
			}
			return
		}
		kinds := 0
		for _, set := range []bool{st.Latest, st.Beginning, st.Snapshot, st.Cursor != "", st.Ago != 0, !st.At.IsZero(), st.Offset >= 0} {
			if set {
				kinds++
			}
		}
		if kinds > 1 || (kinds == 0 && st.AfterVersion == 0 && s != "0" && s != "v0" && !allZeros(s)) || st.Ago < 0 || st.Offset < -1 {
			t.Fatalf("%q parsed as %+v", s, st)
		}
	})
}

func allZeros(s string) bool {
	if len(s) > 0 && s[0] == 'v' {
		s = s[1:]
	}
	for _, c := range s {
		if c != '0' && c != '+' {
			return false
		}
	}
	return s != ""
}
