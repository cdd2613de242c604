package config

import (
	"fmt"
	"net/url"
	"strings"
)

// Console is the web console `wail serve` serves under /console/ on the
// API address (internal/console).
type Console struct {
	// Enabled serves the console.
	Enabled bool `yaml:"enabled"`
	// MaxTails bounds the live event tails open at once (each reads
	// every partition of its table).
	MaxTails int `yaml:"max_tails"`
	// MaxHistories bounds the key histories read at once (each reads
	// back up to history_records records of a partition).
	MaxHistories int `yaml:"max_histories"`
	// HistoryRecords bounds the records of a partition that a key's
	// history reads back from the partition's end.
	HistoryRecords int64 `yaml:"history_records"`
	// AllowedOrigins are the origins (scheme://host[:port]) of other
	// sites whose pages may call the console's API from a browser: the
	// console's own origin always may, another site's page is refused
	// (it could open tails in the browser of someone who reaches wail).
	AllowedOrigins []string `yaml:"allowed_origins"`
}

func defaultConsole() Console {
	return Console{Enabled: true, MaxTails: 8, MaxHistories: 4, HistoryRecords: 100000}
}

func (c *Config) validateConsole() []error {
	var errs []error
	if c.Console.MaxTails < 1 || c.Console.MaxTails > 1024 {
		errs = append(errs, fmt.Errorf("console.max_tails %d out of range 1..1024", c.Console.MaxTails))
	}
	if c.Console.MaxHistories < 1 || c.Console.MaxHistories > 1024 {
		errs = append(errs, fmt.Errorf("console.max_histories %d out of range 1..1024", c.Console.MaxHistories))
	}
	if c.Console.HistoryRecords < 1 || c.Console.HistoryRecords > 100_000_000 {
		errs = append(errs, fmt.Errorf("console.history_records %d out of range 1..100000000", c.Console.HistoryRecords))
	}
	for _, o := range c.Console.AllowedOrigins {
		u, err := url.Parse(o)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil ||
			strings.TrimSuffix(u.Path, "/") != "" || u.RawQuery != "" || u.Fragment != "" {
			errs = append(errs, fmt.Errorf("console.allowed_origins: %q is not an origin: give scheme://host[:port] (e.g. https://ops.example.com), no path", o))
		}
	}
	return errs
}
