package config

import (
	"fmt"
	"os"
	"time"

	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
	"github.com/wail-cdc/wail/internal/sink"
)

// Sinks configures webhook sinks (package sink): whether this process
// delivers, and sinks defined here (created at start, or made to match
// this definition when they exist; paused state kept).
type Sinks struct {
	// Enabled makes this process deliver the sinks of tables it serves.
	// With several processes sharing a store and Kafka, each sink is
	// delivered by one of the processes where it is enabled at a time,
	// and moves to another when that one stops or dies (after
	// api.group_lease_timeout).
	Enabled bool `yaml:"enabled"`
	// Refresh is how often sink definitions are read again (changes made
	// through other processes; at least 10ms).
	Refresh time.Duration `yaml:"refresh"`
	// Webhooks are sinks defined by the configuration.
	Webhooks []Webhook `yaml:"webhooks"`
	// TLS is how this process's sinks connect to https:// endpoints:
	// ca_file (PEM CAs of endpoints signed by a private CA, else the
	// system's roots), cert_file and key_file (a client certificate for
	// endpoints that want mutual TLS). Every process with sinks.enabled
	// needs the same files: a sink moves between them.
	TLS ClientTLS `yaml:"tls"`
}

// ClientTLS is TLS of wail as a client of another service.
type ClientTLS struct {
	// CAFile is a PEM file of the CAs that sign the service's
	// certificate (empty: the system's roots). Read at start.
	CAFile string `yaml:"ca_file"`
	// CertFile is a client certificate (PEM) for a service that wants
	// one; key_file goes with it. Read again when the files change
	// (security.reload_interval).
	CertFile string `yaml:"cert_file"`
	// KeyFile is the client certificate's key (PEM).
	KeyFile string `yaml:"key_file"`
}

// Set reports whether any file is given.
func (t ClientTLS) Set() bool { return t.CAFile != "" || t.CertFile != "" || t.KeyFile != "" }

// validate checks that cert_file and key_file go together; key is where
// they are (sinks.tls).
func (t ClientTLS) validate(key string) []error {
	if (t.CertFile == "") != (t.KeyFile == "") {
		return []error{fmt.Errorf("%s.cert_file and key_file go together", key)}
	}
	return nil
}

// Webhook is one sink in the configuration (the fields of `wail sink
// create`).
type Webhook struct {
	// Table is the table whose events the sink delivers.
	Table string `yaml:"table"`
	// Name names the sink (1-63 lower-case letters, digits or '_').
	Name string `yaml:"name"`
	// URL is where batches are POSTed (http or https).
	URL string `yaml:"url"`
	// Secret signs each request (HMAC-SHA256, header Wail-Signature).
	Secret string `yaml:"secret"`
	// SecretEnv names an environment variable holding the secret instead.
	SecretEnv string `yaml:"secret_env"`
	// Format of the body: json (default) or protobuf.
	Format string `yaml:"format"`
	// Start is where a new sink starts: latest (default), beginning or
	// snapshot (every key's current state, then the changes).
	Start string `yaml:"start"`
	// MaxBatchEvents is the most events per request (default 100).
	MaxBatchEvents int32 `yaml:"max_batch_events"`
	// Timeout bounds one request, sending and answer (default 10s).
	Timeout time.Duration `yaml:"timeout"`
	// MaxAttempts bounds a batch's attempts (0: only max_retry bounds them).
	MaxAttempts int32 `yaml:"max_attempts"`
	// MaxRetry bounds the time from a batch's first attempt (default 15m);
	// past it or max_attempts, the batch goes to the sink's dead-letter topic.
	MaxRetry time.Duration `yaml:"max_retry"`
	// BackoffMin is the first wait before a retry (default 200ms).
	BackoffMin time.Duration `yaml:"backoff_min"`
	// BackoffMax is the longest wait before a retry (default 30s).
	BackoffMax time.Duration `yaml:"backoff_max"`
	// PartitionsInFlight is how many partitions' requests are in flight at
	// once (default 4, at most 256; per key, order is kept).
	PartitionsInFlight int32 `yaml:"partitions_in_flight"`
}

// Sink returns the webhook's definition, with defaults.
func (w Webhook) Sink() (*wailv1.Sink, error) {
	secret := w.Secret
	if w.SecretEnv != "" {
		if secret != "" {
			return nil, fmt.Errorf("secret and secret_env are both set: use one")
		}
		var ok bool
		if secret, ok = os.LookupEnv(w.SecretEnv); !ok || secret == "" {
			return nil, fmt.Errorf("secret_env %s: the environment variable is not set", w.SecretEnv)
		}
	}
	d := sink.WithDefaults(&wailv1.Sink{Table: w.Table, Name: w.Name, Url: w.URL, Secret: secret, Format: w.Format, Start: w.Start,
		MaxBatchEvents: w.MaxBatchEvents, TimeoutMs: w.Timeout.Milliseconds(), MaxAttempts: w.MaxAttempts,
		MaxRetryMs: w.MaxRetry.Milliseconds(), BackoffMinMs: w.BackoffMin.Milliseconds(), BackoffMaxMs: w.BackoffMax.Milliseconds(),
		PartitionsInFlight: w.PartitionsInFlight})
	return d, sink.Validate(d)
}

func (c *Config) validateSinks() []error {
	var errs []error
	seen := map[[2]string]bool{}
	for i, w := range c.Sinks.Webhooks {
		if _, err := w.Sink(); err != nil {
			errs = append(errs, fmt.Errorf("sinks.webhooks[%d] (%s): %w", i, w.Name, err))
		}
		if seen[[2]string{w.Table, w.Name}] {
			errs = append(errs, fmt.Errorf("sinks.webhooks[%d]: sink %s of table %s is listed twice", i, w.Name, w.Table))
		}
		seen[[2]string{w.Table, w.Name}] = true
	}
	return append(errs, c.Sinks.TLS.validate("sinks.tls")...)
}
