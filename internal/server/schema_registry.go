package server

import (
	"net/http"

	"github.com/wail-cdc/wail/internal/config"
	"github.com/wail-cdc/wail/internal/schemaregistry"
	"github.com/wail-cdc/wail/internal/store"
)

// schemaRegistry is the Confluent-compatible schema registry, kept in the
// store's catalog and mounted at config.SchemaRegistryPath.
func (s *Server) schemaRegistry() http.Handler {
	return http.StripPrefix(config.SchemaRegistryPath, schemaregistry.Handler(s.schemas, s.logger, s.registry))
}

// openSchemas opens the schema registry on the store's catalog (typed
// tables use it whether or not its HTTP API is served).
func (s *Server) openSchemas() {
	c := s.cfg.SchemaRegistry
	s.schemas = schemaregistry.New(schemaregistry.Catalog{Store: s.store}, schemaregistry.Limits{
		MaxSchemaBytes: c.MaxSchemaBytes, MaxReferences: c.MaxReferences, MaxDocumentBytes: c.MaxDocumentBytes})
	s.values = newTypedValues(s, s.cfg.CatalogRefresh)
	s.schemas.OnChange(s.values.forget) // a change through this process is taken at once
	if d, ok := s.store.(store.DocumentStore); ok && d.KeepsDocuments() {
		s.values.docs = true // typed values also go to the store's queryable column
	}
	s.bus.SetTyper(s.values) // typed tables' events in the Confluent wire format
}
