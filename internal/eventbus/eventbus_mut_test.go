package eventbus

import (
	"testing"
	"time"
)

// TestScanWaitDefaults: a scan asks the log about hanging transactions
// after 5 s without a record (DESIGN.md, "Hanging transactions", step 1),
// and LastVersionsOf gives up after 30 s (its doc comment). Tests shorten
// both, so only this one sees the values the server runs with: a 0 wait
// would make every read of a scan end at once, and a 0 stallLimit means
// no bound (LastVersionsOf would hold a hanging partition forever). Not
// parallel: other tests set them.
func TestScanWaitDefaults(t *testing.T) {
	for _, tc := range []struct {
		name      string
		got, want time.Duration
	}{
		{"stallCheck", stallCheck, 5 * time.Second},
		{"stallLimit", stallLimit, 30 * time.Second},
	} {
		if tc.got != tc.want {
			t.Errorf("%s = %s, want %s", tc.name, tc.got, tc.want)
		}
	}
}
