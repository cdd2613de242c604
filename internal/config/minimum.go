package config

import (
	"fmt"
	"time"
)

// The least values of the intervals that drive loops or remove data: a
// positive value below one loaded, and made a loop spin (catalog_refresh:
// 1ns reloaded the catalog from the store back to back) or retention
// remove records as soon as written (log.retention: 1ns).
const (
	minRefresh        = 10 * time.Millisecond // catalog, sinks, key sets
	minCommitInterval = time.Millisecond
	minBackoff        = 100 * time.Microsecond
	minRetryBackoff   = time.Millisecond
	// minRetention: the embedded log checks retention every minute, and
	// an intent must outlive its resolution.
	minRetention = time.Minute
	// minRetentionCheck: each check asks the brokers for two topics'
	// configs per table.
	minRetentionCheck = time.Second
)

// validateMinimums refuses an interval below its minimum, naming the key,
// the value and the minimum. A zero that means "off" or "forever" passes.
func (c *Config) validateMinimums() []error {
	jwt := c.Security.Auth.JWT
	forever := " (0s keeps them forever)"
	var errs []error
	for _, d := range []struct {
		key       string
		v, min    time.Duration
		zeroMeans string // "": zero is below the minimum too
	}{
		{"catalog_refresh", c.CatalogRefresh, minRefresh, ""},
		{"sinks.refresh", c.Sinks.Refresh, minRefresh, ""},
		{"resolver.commit_interval", c.Resolver.CommitInterval, minCommitInterval, ""},
		{"resolver.backoff_min", c.Resolver.BackoffMin, minBackoff, ""},
		{"resolver.retry_backoff_min", c.Resolver.RetryBackoffMin, minRetryBackoff, ""},
		{"log.retention", c.Log.Retention, minRetention, forever},
		{"log.event_retention", c.Log.EventRetention, minRetention, forever},
		{"log.dlq_retention", c.Log.DLQRetention, minRetention, forever},
		{"log.kafka.retention_check", c.Log.Kafka.RetentionCheck, minRetentionCheck, " (0s: only at start and table create)"},
		{"security.auth.jwt.refresh", jwt.Refresh, minRefresh, " (0s: the default, 5m)"},
		{"security.auth.jwt.refetch_interval", jwt.RefetchInterval, minRefresh, " (0s: the default, 30s)"},
	} {
		if d.v >= d.min || d.v < 0 || (d.v == 0 && d.zeroMeans != "") {
			continue // negative values have errors of their own
		}
		errs = append(errs, fmt.Errorf("%s %s is below its minimum of %s%s", d.key, d.v, d.min, d.zeroMeans))
	}
	return errs
}
