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
}

func defaultConsole() Console { return Console{Enabled: true, MaxTails: 8} }

func (c *Config) validateConsole() []error {
	if c.Console.MaxTails < 1 || c.Console.MaxTails > 1024 {
		return []error{fmt.Errorf("console.max_tails %d out of range 1..1024", c.Console.MaxTails)}
	}
	return nil
}
