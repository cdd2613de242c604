package config

import "fmt"

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
}

func defaultSchemaRegistry() SchemaRegistry {
	return SchemaRegistry{Enabled: true, MaxSchemaBytes: 256 << 10, MaxReferences: 64, MaxDocumentBytes: 8 << 20}
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
	return errs
}
