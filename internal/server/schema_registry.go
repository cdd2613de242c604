package server

import (
	"context"
	"fmt"
	"net/http"

	"github.com/wail-cdc/wail/internal/config"
	"github.com/wail-cdc/wail/internal/schema"
	"github.com/wail-cdc/wail/internal/schemaregistry"
	"github.com/wail-cdc/wail/internal/store"
)

// schemaSource is what typed tables need of a schema registry: wail's own
// (schemaregistry.Registry, kept in the store's catalog) or an external
// Confluent-compatible one (schemaregistry.Remote, schema_registry.url).
type schemaSource interface {
	Compile(ctx context.Context, req schemaregistry.SchemaRequest) (*schema.Schema, error)
	Register(ctx context.Context, subject string, req schemaregistry.SchemaRequest) (int, error)
	Versions(ctx context.Context, subject string, deleted bool) ([]int, error)
	Latest(ctx context.Context, subject string) (int, *schema.Schema, error)
	ByID(ctx context.Context, id int) (*schema.Schema, error)
	LiveIDs(ctx context.Context, subject string) ([]int, error)
	OnChange(fn func(subject string))
}

// schemaRegistry is the Confluent-compatible schema registry, kept in the
// store's catalog and mounted at config.SchemaRegistryPath; with an
// external registry (schema_registry.url), a 404 that names it.
func (s *Server) schemaRegistry() http.Handler {
	if s.ownSchemas == nil {
		url := s.cfg.SchemaRegistry.URL
		return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "application/vnd.schemaregistry.v1+json")
			w.WriteHeader(http.StatusNotFound)
			fmt.Fprintf(w, "{\"error_code\":404,\"message\":%q}\n", "this wail uses the external schema registry "+url+" (schema_registry.url): use it")
		})
	}
	return http.StripPrefix(config.SchemaRegistryPath, schemaregistry.Handler(s.ownSchemas, s.logger, s.registry))
}

// openSchemas opens the schema registry typed tables use (whether or not
// wail's own HTTP API is served): wail's own on the store's catalog, or
// the external one of schema_registry.url.
func (s *Server) openSchemas() error {
	c := s.cfg.SchemaRegistry
	lim := schemaregistry.Limits{MaxSchemaBytes: c.MaxSchemaBytes, MaxReferences: c.MaxReferences, MaxDocumentBytes: c.MaxDocumentBytes}
	if c.URL == "" {
		s.ownSchemas = schemaregistry.New(schemaregistry.Catalog{Store: s.store}, lim)
		s.schemas = s.ownSchemas
	} else {
		tlsConf, err := schemaregistry.ClientTLS(c.TLS.CAFile, c.TLS.CertFile, c.TLS.KeyFile)
		if err != nil {
			return err
		}
		if s.schemas, err = schemaregistry.NewRemote(schemaregistry.RemoteOptions{URL: c.URL, TLS: tlsConf,
			Username: c.Username, Password: c.Password, Timeout: c.Timeout, Limits: lim}); err != nil {
			return err
		}
	}
	s.values = newTypedValues(s, s.cfg.CatalogRefresh)
	s.schemas.OnChange(s.values.forget) // a change through this process is taken at once
	if d, ok := s.store.(store.DocumentStore); ok && d.KeepsDocuments() {
		s.values.docs = true // typed values also go to the store's queryable column
	}
	s.bus.SetTyper(s.values) // typed tables' events in the Confluent wire format
	return nil
}
