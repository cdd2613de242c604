package server

import (
	"net/http"

	"github.com/wail-cdc/wail/internal/config"
	"github.com/wail-cdc/wail/internal/schemaregistry"
)

// schemaRegistry is the Confluent-compatible schema registry, kept in the
// store's catalog and mounted at config.SchemaRegistryPath.
func (s *Server) schemaRegistry() http.Handler {
	c := s.cfg.SchemaRegistry
	r := schemaregistry.New(schemaregistry.Catalog{Store: s.store}, schemaregistry.Limits{
		MaxSchemaBytes: c.MaxSchemaBytes, MaxReferences: c.MaxReferences, MaxDocumentBytes: c.MaxDocumentBytes})
	return http.StripPrefix(config.SchemaRegistryPath, schemaregistry.Handler(r, s.logger, s.registry))
}
