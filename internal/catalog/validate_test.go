package catalog

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// TestValidateBounds: every range is inclusive at both ends, and one step
// past either end is refused, naming the setting; the per-table partition
// bound is limits.max_table_partitions (its default when unset).
func TestValidateBounds(t *testing.T) {
	t.Parallel()
	with := func(f func(*Table)) Table {
		d := defaults
		d.Name = "t"
		f(&d)
		return d
	}
	for _, tc := range []struct {
		name string
		t    Table
		lim  Limits
		bad  string // the setting named, or "" when valid
	}{
		{"the defaults", with(func(*Table) {}), Limits{}, ""},
		{"failure mode independent", with(func(d *Table) { d.FailureMode = Independent }), Limits{}, ""},
		{"failure mode unset", with(func(d *Table) { d.FailureMode = 0 }), Limits{}, "failure_mode"},
		{"the shortest window", with(func(d *Table) { d.VisibilityWindow = MinVisibilityWindow }), Limits{}, ""},
		{"a window too short", with(func(d *Table) { d.VisibilityWindow = MinVisibilityWindow - 1 }), Limits{}, "visibility_window"},
		{"the longest window", with(func(d *Table) { d.VisibilityWindow = MaxVisibilityWindow }), Limits{}, ""},
		{"a window too long", with(func(d *Table) { d.VisibilityWindow = MaxVisibilityWindow + 1 }), Limits{}, "visibility_window"},
		{"one partition", with(func(d *Table) { d.Partitions = 1 }), Limits{}, ""},
		{"no partition", with(func(d *Table) { d.Partitions = 0 }), Limits{}, "partitions"},
		{"the default partition bound", with(func(d *Table) { d.Partitions = DefaultMaxTablePartitions }), Limits{}, ""},
		{"past the default partition bound", with(func(d *Table) { d.Partitions = DefaultMaxTablePartitions + 1 }), Limits{}, "partitions"},
		{"the configured partition bound", with(func(d *Table) { d.Partitions = 4 }), Limits{MaxTablePartitions: 4}, ""},
		{"past the configured partition bound", with(func(d *Table) { d.Partitions = 5 }), Limits{MaxTablePartitions: 4}, "limits.max_table_partitions"},
		{"one attempt", with(func(d *Table) { d.MaxAttempts = 1 }), Limits{}, ""},
		{"no attempt", with(func(d *Table) { d.MaxAttempts = 0 }), Limits{}, "max_attempts"},
		{"the most attempts", with(func(d *Table) { d.MaxAttempts = MaxMaxAttempts }), Limits{}, ""},
		{"too many attempts", with(func(d *Table) { d.MaxAttempts = MaxMaxAttempts + 1 }), Limits{}, "max_attempts"},
		{"the shortest retry time", with(func(d *Table) { d.MaxRetryTime = MinMaxRetryTime }), Limits{}, ""},
		{"a retry time too short", with(func(d *Table) { d.MaxRetryTime = MinMaxRetryTime - 1 }), Limits{}, "max_retry_time"},
		{"the longest retry time", with(func(d *Table) { d.MaxRetryTime = MaxMaxRetryTime }), Limits{}, ""},
		{"a retry time too long", with(func(d *Table) { d.MaxRetryTime = MaxMaxRetryTime + 1 }), Limits{}, "max_retry_time"},
		{"a bad name", with(func(d *Table) { d.Name = "T" }), Limits{}, "table name"},
	} {
		err := Validate(tc.t, tc.lim, true)
		switch {
		case tc.bad == "" && err != nil:
			t.Errorf("%s: %v", tc.name, err)
		case tc.bad != "" && (!errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tc.bad)):
			t.Errorf("%s: %v, want ErrInvalid naming %s", tc.name, err, tc.bad)
		}
	}
	// Table defaults have no name: it is checked only when named.
	if err := Validate(defaults, Limits{}, false); err != nil {
		t.Errorf("the defaults, unnamed: %v", err)
	}
	if err := Validate(defaults, Limits{}, true); !errors.Is(err, ErrInvalid) {
		t.Errorf("a table without a name: %v, want ErrInvalid", err)
	}
}

// TestLimitsCheck: limits.max_table_partitions is within 1..65536, and
// limits.max_partitions at least that (equal is fine); unset, each takes
// its default.
func TestLimitsCheck(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		lim Limits
		bad string // the setting named, or "" when valid
	}{
		{Limits{}, ""},
		{Limits{MaxTablePartitions: 1, MaxPartitions: 1}, ""},
		{Limits{MaxTablePartitions: -1, MaxPartitions: 1}, "limits.max_table_partitions -1"},
		{Limits{MaxTablePartitions: HardMaxTablePartitions, MaxPartitions: HardMaxTablePartitions}, ""},
		{Limits{MaxTablePartitions: HardMaxTablePartitions + 1, MaxPartitions: 1 << 20}, "limits.max_table_partitions 65537"},
		{Limits{MaxTablePartitions: 8, MaxPartitions: 7}, "limits.max_partitions 7"},
		{Limits{MaxPartitions: DefaultMaxTablePartitions}, ""},
		{Limits{MaxPartitions: DefaultMaxTablePartitions - 1}, "limits.max_partitions 1023"},
		{Limits{MaxTablePartitions: DefaultMaxPartitions}, ""},
		{Limits{MaxTablePartitions: DefaultMaxPartitions + 1}, "limits.max_partitions 4096"},
	} {
		err := tc.lim.Check()
		if (err == nil) != (tc.bad == "") || (err != nil && !strings.Contains(err.Error(), tc.bad)) {
			t.Errorf("%+v: %v, want an error naming %q", tc.lim, err, tc.bad)
		}
	}
}

// TestShort: durations print without zero minutes and seconds.
func TestShort(t *testing.T) {
	t.Parallel()
	for d, want := range map[time.Duration]string{
		24 * time.Hour: "24h", 10 * time.Minute: "10m", time.Second: "1s", 90 * time.Minute: "1h30m",
		time.Hour + time.Second: "1h0m1s", 10 * time.Millisecond: "10ms",
	} {
		if got := short(d); got != want {
			t.Errorf("short(%s) = %q, want %q", d, got, want)
		}
	}
}
