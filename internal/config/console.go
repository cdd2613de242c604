package config

import "fmt"

// Console is the web console `wail serve` serves under /console/ on the
// API address (internal/console).
type Console struct {
	// Enabled serves the console.
	Enabled bool `yaml:"enabled"`
	// MaxTails bounds the live event tails open at once (each reads
	// every partition of its table).
	MaxTails int `yaml:"max_tails"`
	// HistoryRecords bounds the records of a partition that a key's
	// history reads back from the partition's end.
	HistoryRecords int64 `yaml:"history_records"`
}

func defaultConsole() Console { return Console{Enabled: true, MaxTails: 8, HistoryRecords: 100000} }

func (c *Config) validateConsole() []error {
	var errs []error
	if c.Console.MaxTails < 1 || c.Console.MaxTails > 1024 {
		errs = append(errs, fmt.Errorf("console.max_tails %d out of range 1..1024", c.Console.MaxTails))
	}
	if c.Console.HistoryRecords < 1 || c.Console.HistoryRecords > 100_000_000 {
		errs = append(errs, fmt.Errorf("console.history_records %d out of range 1..100000000", c.Console.HistoryRecords))
	}
	return errs
}
