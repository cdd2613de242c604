package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"time"

	"github.com/wail-cdc/wail/internal/api"
	"github.com/wail-cdc/wail/internal/catalog"

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
// store's catalog and mounted at config.SchemaRegistryPath. With an
// external registry (schema_registry.url) it passes reads on to it
// (externalReads), so that `wail schema ls|show|diff|check` and
// `tail --value-json` work the same.
func (s *Server) schemaRegistry() http.Handler {
	if s.ownSchemas == nil {
		return s.externalAPI
	}
	return http.StripPrefix(config.SchemaRegistryPath, schemaregistry.Handler(s.ownSchemas, s.logger, s.registry))
}

// externalReads passes the registry API's reads on to the external
// registry, with wail's credentials for it (the client's own
// Authorization, wail's token, is not passed on; wail's guard checked it
// as for its own registry): GETs, lookups (POST /subjects/<s>) and
// compatibility tests. Changes are refused (405) naming the external
// registry: make them there, or through a table's alter.
func externalReads(c config.SchemaRegistry, tlsConf *tls.Config) (http.Handler, error) {
	target, err := url.Parse(c.URL)
	if err != nil {
		return nil, fmt.Errorf("schema_registry.url: %w", err)
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = tlsConf.Clone() // the transport writes into it; the registry client shares tlsConf
	tr.ResponseHeaderTimeout = c.Timeout
	proxy := &httputil.ReverseProxy{
		Transport: tr,
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(target)
			// The escaped path, as it came (an encoded slash in a subject
			// stays one), under the registry's base path.
			r.Out.URL.RawPath = strings.TrimSuffix(target.EscapedPath(), "/") + strings.TrimPrefix(r.In.URL.EscapedPath(), config.SchemaRegistryPath)
			r.Out.URL.Path, _ = url.PathUnescape(r.Out.URL.RawPath)
			r.Out.Header.Del("Authorization")
			if c.Username != "" {
				r.Out.SetBasicAuth(c.Username, c.Password)
			}
		},
	}
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if api.DotSegments(req.URL.EscapedPath()) {
			// Decoded and passed on, "/compatibility/%2E%2E/subjects/x/
			// versions" would be a registration with wail's credentials
			// once the registry resolved it.
			refuseExternal(w, http.StatusBadRequest, "the path has a . or .. segment (or one encoded): name the resource's path itself")
			return
		}
		if why := methodOverride(req); why != "" {
			// Honoured by the registry or a gateway before it, a
			// compatibility test's POST would be a deletion, made with
			// wail's credentials.
			refuseExternal(w, http.StatusBadRequest, why+" asks for another method than the request's: send the request with its own method")
			return
		}
		if family, ok := schemaAPI(req.URL.EscapedPath()); !ok {
			// Passed on, it would be read with wail's credentials by any
			// caller with a grant: the DEK registry's keys, exporters'
			// configurations with other registries' credentials.
			refuseExternal(w, http.StatusNotFound, fmt.Sprintf("/%s is not part of the schema registry API that wail passes on to the external registry "+
				"(/schemas, /subjects, /config, /mode, /compatibility, /contexts): ask the registry itself", family))
			return
		}
		rest := strings.TrimPrefix(req.URL.Path, config.SchemaRegistryPath)
		read := req.Method == http.MethodGet || req.Method == http.MethodHead ||
			(req.Method == http.MethodPost && (strings.HasPrefix(rest, "/compatibility/") || (strings.HasPrefix(rest, "/subjects/") && strings.Count(rest, "/") == 2)))
		if !read {
			refuseExternal(w, http.StatusMethodNotAllowed, "this wail uses the external schema registry "+schemaregistry.HideURLPassword(c.URL)(c.URL)+
				" (schema_registry.url) and passes on reads only: make changes there, or evolve a table with wail table alter")
			return
		}
		proxy.ServeHTTP(w, req)
	}), nil
}

// refuseExternal answers, in the external registry's stead, the
// registry's error body (error_code: status), which its clients parse.
func refuseExternal(w http.ResponseWriter, status int, msg string) {
	schemaregistry.WriteError(w, &schemaregistry.Error{Status: status, Code: status, Message: msg})
}

// schemaAPIFamilies are the first path segments of the schema registry
// API (Confluent's, wail's own): what externalReads passes on. A
// Confluent registry serves other APIs beside it (/dek-registry,
// /exporters, ...), which no client of wail's registry needs.
var schemaAPIFamilies = map[string]bool{"": true, "schemas": true, "subjects": true, "config": true, "mode": true,
	"compatibility": true, "contexts": true}

// schemaAPI reports whether the escaped path of a request to
// config.SchemaRegistryPath is in the schema registry API, and its first
// segment, decoded.
func schemaAPI(escaped string) (family string, ok bool) {
	rest := strings.TrimPrefix(strings.TrimPrefix(escaped, config.SchemaRegistryPath), "/")
	first, _, _ := strings.Cut(rest, "/")
	family, err := url.PathUnescape(first)
	if err != nil {
		return first, false
	}
	return family, schemaAPIFamilies[family]
}

// methodOverride names what in req asks for another method than its own
// (a header or query parameter some servers and gateways honour), "" if
// nothing does.
func methodOverride(req *http.Request) string {
	for _, h := range []string{"X-HTTP-Method-Override", "X-HTTP-Method", "X-Method-Override"} {
		if len(req.Header.Values(h)) > 0 {
			return "the header " + h
		}
	}
	for k := range req.URL.Query() {
		if strings.EqualFold(k, "_method") || strings.EqualFold(k, "x-http-method-override") {
			return "the query parameter " + k
		}
	}
	return ""
}

// newRemote is the client of the external registry of schema_registry.url,
// over tlsConf (registryTLS).
func newRemote(c config.SchemaRegistry, tlsConf *tls.Config) (*schemaregistry.Remote, error) {
	return schemaregistry.NewRemote(schemaregistry.RemoteOptions{URL: c.URL, TLS: tlsConf, Username: c.Username, Password: c.Password,
		Timeout: c.Timeout, Limits: registryLimits(c)})
}

// registryLimits are schema_registry's limits, for wail's own registry and
// the client of an external one.
func registryLimits(c config.SchemaRegistry) schemaregistry.Limits {
	return schemaregistry.Limits{MaxSchemaBytes: c.MaxSchemaBytes, MaxReferences: c.MaxReferences, MaxDocumentBytes: c.MaxDocumentBytes,
		MaxCompiles: c.MaxCompiles, CompileTimeout: c.CompileTimeout}
}

// doctorRegistry checks an external registry (schema_registry.url): it
// answers with wail's credentials, and holds the subjects of the typed
// tables of the catalog (their latest schemas compile and have the
// tables' message types), each request bounded by timeout. wail's own
// registry is the store's, checked with it.
func doctorRegistry(ctx context.Context, cfg config.Config, timeout time.Duration, w io.Writer, tables []catalog.Table, fail func(check, format string, args ...any)) {
	if cfg.SchemaRegistry.URL == "" {
		return
	}
	tlsConf, err := registryTLS(cfg, nil)
	var r *schemaregistry.Remote
	if err == nil {
		r, err = newRemote(cfg.SchemaRegistry, tlsConf)
	}
	if err != nil {
		fail("registry", "%v", err)
		return
	}
	if err := bounded(ctx, timeout, func(ctx context.Context) error {
		_, err := r.Versions(ctx, "_wail_doctor_probe", false)
		return err
	}); err != nil {
		var e *schemaregistry.Error
		if !errors.As(err, &e) || e.Code != schemaregistry.CodeSubjectNotFound {
			fail("registry", "%v", err)
			return
		}
	}
	n := 0
	for _, t := range tables {
		for _, p := range []struct{ part, msg string }{{partKey, t.KeyMessage}, {partValue, t.ValueMessage}} {
			if p.msg == "" {
				continue
			}
			subject := subjectOf(cfg, t.Name, p.part)
			var id int
			err := bounded(ctx, timeout, func(ctx context.Context) error {
				var sch *schema.Schema
				var err error
				if id, sch, err = r.Latest(ctx, subject); err == nil {
					_, err = sch.MessageType(p.msg)
				}
				return err
			})
			if err != nil {
				fail("registry", "table %s's %s schema (subject %s, id %d): %v", t.Name, p.part, subject, id, err)
				return
			}
			n++
		}
	}
	fmt.Fprintf(w, "registry     ok (external %s: %d typed tables' subjects found)\n", schemaregistry.HideURLPassword(cfg.SchemaRegistry.URL)(cfg.SchemaRegistry.URL), n)
}

// openSchemas opens the schema registry typed tables use (whether or not
// wail's own HTTP API is served): wail's own on the store's catalog, or
// the external one of schema_registry.url.
func (s *Server) openSchemas() error {
	c := s.cfg.SchemaRegistry
	lim := registryLimits(c)
	if c.URL == "" {
		s.ownSchemas = schemaregistry.New(schemaregistry.Catalog(s.store), lim)
		s.schemas = s.ownSchemas
	} else {
		tlsConf, err := registryTLS(s.cfg, s.reloadProblem(registryTLSComponent, "schema_registry.tls's client certificate",
			"check that schema_registry.tls.cert_file and key_file match and are PEM"))
		if err != nil {
			return err
		}
		r, err := newRemote(c, tlsConf)
		if err != nil {
			return err
		}
		s.schemas = r
		if s.externalAPI, err = externalReads(c, tlsConf); err != nil {
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

// registryTLS is how the external registry is reached
// (schema_registry.tls); onError hears of a client certificate renewal
// that does not load.
func registryTLS(cfg config.Config, onError func(error)) (*tls.Config, error) {
	t, err := api.ClientTLS(cfg.SchemaRegistry.TLS, cfg.Security.ReloadInterval, onError)
	if err != nil {
		return nil, fmt.Errorf("schema_registry.tls: %w", err)
	}
	return t, nil
}
