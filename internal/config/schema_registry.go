package config

import (
	"fmt"
	"net/url"
	"time"
)

// SchemaRegistryPath is where `wail serve` mounts the schema registry on
// its port: clients written for the Confluent Schema Registry take
// http://<listen>/registry as the registry's URL.
const SchemaRegistryPath = "/registry"

// SchemaRegistry configures the schema registry (package schemaregistry):
// the Confluent Schema Registry REST API for Protobuf schemas, served at
// SchemaRegistryPath on the API's port and kept in the store's catalog.
type SchemaRegistry struct {
	// Enabled serves the registry.
	Enabled bool `yaml:"enabled"`
	// MaxSchemaBytes bounds one schema's text (error 42209 past it);
	// a request also obeys api.max_admin_request_bytes.
	MaxSchemaBytes int `yaml:"max_schema_bytes"`
	// MaxReferences bounds the files one schema imports, directly or not.
	MaxReferences int `yaml:"max_references"`
	// MaxDocumentBytes bounds all schemas together, as stored in the
	// store's catalog: a registration past it is refused (42209);
	// deletes (soft, then permanent) always go through, to make room.
	MaxDocumentBytes int `yaml:"max_document_bytes"`
	// MaxCompiles bounds the schema compiles that run at once (a
	// registration, a lookup, a compatibility check, a typed table's
	// schema), so that schemas never take every core from the writes;
	// others wait for a slot. Schemas already stored (a typed table's,
	// compiled again after a start) may take one more slot, so that a
	// flood of registrations does not hold back the writes.
	MaxCompiles int `yaml:"max_compiles"`
	// CompileTimeout bounds each schema compile, its wait for a slot
	// included: past it the request fails 50002 (a schema with its
	// references costs up to seconds of CPU; the client's own timeout
	// would not stop the server's work).
	CompileTimeout time.Duration `yaml:"compile_timeout"`
	// URL, when set, points wail at an external Confluent-compatible
	// registry (Confluent's, Apicurio's Confluent API, another wail's
	// http://host:port/registry): typed tables register and look up their
	// schemas there; wail's own registry is not used, and /registry passes
	// reads (and compatibility tests) on to the external one. Credentials
	// go in username and password, not in the URL.
	URL string `yaml:"url"`
	// TLS to the external registry: ca_file (PEM CAs, else the system's
	// roots), cert_file and key_file (a client certificate).
	TLS ClientTLS `yaml:"tls"`
	// Username is sent with password as HTTP basic auth to the external
	// registry (Confluent Cloud's API key and secret; for another wail,
	// a token as the password).
	Username string `yaml:"username"`
	// Password goes with username.
	Password string `yaml:"password"`
	// Timeout bounds each request to the external registry.
	Timeout time.Duration `yaml:"timeout"`
}

func defaultSchemaRegistry() SchemaRegistry {
	return SchemaRegistry{Enabled: true, MaxSchemaBytes: 256 << 10, MaxReferences: 64, MaxDocumentBytes: 8 << 20, MaxCompiles: 2,
		CompileTimeout: 10 * time.Second, Timeout: 10 * time.Second}
}

func (c *Config) validateSchemaRegistry() []error {
	var errs []error
	s := c.SchemaRegistry
	// A schema travels JSON-quoted: up to twice its size, plus references.
	if need := int64(s.MaxSchemaBytes)*2 + 64<<10; s.MaxSchemaBytes < 1<<10 || (s.Enabled && need > c.API.MaxAdminRequestBytes) {
		errs = append(errs, fmt.Errorf("schema_registry.max_schema_bytes %d out of range 1024..%d (twice it plus 64 KiB must fit api.max_admin_request_bytes %d)",
			s.MaxSchemaBytes, (c.API.MaxAdminRequestBytes-64<<10)/2, c.API.MaxAdminRequestBytes))
	}
	if s.MaxReferences < 1 || s.MaxReferences > 4096 {
		errs = append(errs, fmt.Errorf("schema_registry.max_references %d out of range 1..4096", s.MaxReferences))
	}
	if s.MaxDocumentBytes < s.MaxSchemaBytes || s.MaxDocumentBytes > 256<<20 {
		errs = append(errs, fmt.Errorf("schema_registry.max_document_bytes %d out of range %d (max_schema_bytes)..%d",
			s.MaxDocumentBytes, s.MaxSchemaBytes, 256<<20))
	}
	if s.MaxCompiles < 1 || s.MaxCompiles > 1024 {
		errs = append(errs, fmt.Errorf("schema_registry.max_compiles %d out of range 1..1024", s.MaxCompiles))
	}
	if s.CompileTimeout < 100*time.Millisecond || s.CompileTimeout > 10*time.Minute {
		errs = append(errs, fmt.Errorf("schema_registry.compile_timeout %s out of range 100ms..10m", s.CompileTimeout))
	}
	errs = append(errs, s.validateURL()...)
	return errs
}

// validateURL checks the external registry's settings.
func (s SchemaRegistry) validateURL() []error {
	var errs []error
	if s.URL == "" {
		if s.TLS.Set() || s.Username != "" || s.Password != "" {
			errs = append(errs, fmt.Errorf("schema_registry.tls, username and password are for an external registry: set schema_registry.url"))
		}
		return errs
	}
	u, err := url.Parse(s.URL)
	switch {
	case err != nil:
		// url.Parse's error quotes the URL, password and all.
		errs = append(errs, fmt.Errorf("schema_registry.url does not parse as a URL: give an http:// or https:// URL"))
	case u.Scheme != "http" && u.Scheme != "https" || u.Host == "":
		errs = append(errs, fmt.Errorf("schema_registry.url %q is not an http:// or https:// URL", u.Redacted()))
	case u.User != nil:
		// In the URL they would be shown wherever the URL is (errors,
		// logs, wail doctor), and be a second place for one secret.
		errs = append(errs, fmt.Errorf("schema_registry.url %q has credentials in it: set schema_registry.username and schema_registry.password instead, and give the URL without them",
			(&url.URL{Scheme: u.Scheme, Host: u.Host, Path: u.Path}).String()))
	case u.Scheme == "http" && (s.TLS.CAFile != "" || s.TLS.CertFile != ""):
		errs = append(errs, fmt.Errorf("schema_registry.tls needs an https:// schema_registry.url (got %s)", u.Redacted()))
	}
	errs = append(errs, s.TLS.validate("schema_registry.tls")...)
	if s.Password != "" && s.Username == "" {
		errs = append(errs, fmt.Errorf("schema_registry.password needs schema_registry.username"))
	}
	if s.Timeout < 100*time.Millisecond || s.Timeout > 10*time.Minute {
		errs = append(errs, fmt.Errorf("schema_registry.timeout %v out of range 100ms..10m", s.Timeout))
	}
	return errs
}
