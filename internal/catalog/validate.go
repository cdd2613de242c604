package catalog

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/wail-cdc/wail/internal/store"
)

// Ranges of a table's settings. The configuration (table_defaults, tables)
// and the API are checked against the same ones, by Validate.
const (
	MinVisibilityWindow = 10 * time.Millisecond
	MaxVisibilityWindow = 24 * time.Hour
	MinMaxRetryTime     = time.Second
	MaxMaxRetryTime     = 7 * 24 * time.Hour
	MaxMaxAttempts      = 1_000_000
	// HardMaxTablePartitions bounds Limits.MaxTablePartitions.
	HardMaxTablePartitions = 65536
)

// Limits are the partition budgets (config limits.max_table_partitions and
// limits.max_partitions). Zero fields take the defaults.
type Limits struct {
	// MaxTablePartitions bounds one table's partitions (default 1024).
	MaxTablePartitions int32
	// MaxPartitions bounds the partitions of all tables of the store
	// together (default 4096): each partition holds files or broker
	// partitions, readers and a resolver loop.
	MaxPartitions int
}

// Default partition budgets.
const (
	DefaultMaxTablePartitions = 1024
	DefaultMaxPartitions      = 4096
)

func (l Limits) withDefaults() Limits {
	if l.MaxTablePartitions == 0 {
		l.MaxTablePartitions = DefaultMaxTablePartitions
	}
	if l.MaxPartitions == 0 {
		l.MaxPartitions = DefaultMaxPartitions
	}
	return l
}

// Check validates the budgets themselves.
func (l Limits) Check() error {
	l = l.withDefaults()
	switch {
	case l.MaxTablePartitions < 1 || l.MaxTablePartitions > HardMaxTablePartitions:
		return fmt.Errorf("limits.max_table_partitions %d out of range 1..%d", l.MaxTablePartitions, HardMaxTablePartitions)
	case l.MaxPartitions < int(l.MaxTablePartitions):
		return fmt.Errorf("limits.max_partitions %d is below limits.max_table_partitions %d", l.MaxPartitions, l.MaxTablePartitions)
	}
	return nil
}

// Validate checks a complete definition (defaults applied) against the
// ranges and the per-table budget; the name only when named is true (table
// defaults have none). Errors wrap ErrInvalid and name the setting as the
// configuration spells it.
func Validate(t Table, lim Limits, named bool) error {
	lim = lim.withDefaults()
	var errs []error
	check := func(ok bool, format string, args ...any) {
		if !ok {
			errs = append(errs, fmt.Errorf(format, args...))
		}
	}
	if named {
		if err := store.ValidateTableName(t.Name); err != nil {
			errs = append(errs, err)
		}
	}
	check(t.FailureMode == Transactional || t.FailureMode == Independent,
		"failure_mode %d: use transactional or independent", t.FailureMode)
	check(t.VisibilityWindow >= MinVisibilityWindow && t.VisibilityWindow <= MaxVisibilityWindow,
		"visibility_window %s out of range %s..%s", short(t.VisibilityWindow), short(MinVisibilityWindow), short(MaxVisibilityWindow))
	check(t.Partitions >= 1 && t.Partitions <= lim.MaxTablePartitions,
		"partitions %d out of range 1..%d (limits.max_table_partitions)", t.Partitions, lim.MaxTablePartitions)
	check(t.MaxAttempts >= 1 && t.MaxAttempts <= MaxMaxAttempts,
		"max_attempts %d out of range 1..%d", t.MaxAttempts, MaxMaxAttempts)
	check(t.MaxRetryTime >= MinMaxRetryTime && t.MaxRetryTime <= MaxMaxRetryTime,
		"max_retry_time %s out of range %s..%s", short(t.MaxRetryTime), short(MinMaxRetryTime), short(MaxMaxRetryTime))
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	return nil
}

// Millis converts a duration the API gives in milliseconds, checking it
// against max before multiplying (a huge value must not wrap around into a
// small valid one). 0 stays 0 (the default); negative values and values
// above max are ErrInvalid, naming field.
func Millis(field string, ms int64, max time.Duration) (time.Duration, error) {
	if ms < 0 || ms > max.Milliseconds() || ms > math.MaxInt64/int64(time.Millisecond) {
		return 0, fmt.Errorf("%w: %s %d out of range 0..%d", ErrInvalid, field, ms, max.Milliseconds())
	}
	return time.Duration(ms) * time.Millisecond, nil
}

// short prints a duration without zero minutes and seconds: 24h, 10m.
func short(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = s[:len(s)-2]
	}
	if strings.HasSuffix(s, "h0m") {
		s = s[:len(s)-2]
	}
	return s
}
