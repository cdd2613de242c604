package catalog

import (
	"fmt"
	"math"
	"time"
)

// Millis converts a duration the API carries in milliseconds (field names
// it, e.g. "visibilityWindowMs") to a time.Duration. A negative value, or
// one whose Duration would overflow (time.Duration(ms)*time.Millisecond
// silently wraps: 288230376151721504 ms became 9.76 s), is ErrInvalid.
// Zero stays zero (the default applies). Ranges of the setting itself are
// the validator's business.
func Millis(field string, ms int64) (time.Duration, error) {
	if ms < 0 || ms > math.MaxInt64/int64(time.Millisecond) {
		return 0, fmt.Errorf("%w: %s %d out of range 0..%d (milliseconds)", ErrInvalid, field, ms, math.MaxInt64/int64(time.Millisecond))
	}
	return time.Duration(ms) * time.Millisecond, nil
}
