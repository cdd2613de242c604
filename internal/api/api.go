// Package api is the one place where wail's API meets HTTP: it mounts the
// three Connect services (ProducerService, AdminService, EventService) on
// a mux with the options every one of them gets (the strict JSON codec,
// codec.go), so that what guards the API (TLS, authentication,
// authorization) is wired once, for every procedure. The handlers and
// their proto<->domain conversions live here too (ProducerService:
// producer.go, writestream.go; AdminService: admin.go, admin_dlq.go,
// admin_sink.go; EventService: events.go); the work stays with the
// domains behind small interfaces defined here: the proxy (a Writer), the
// catalog (Tables), the server (an Operator: schemas, drop hooks,
// reconcile settings), the webhook sinks (Sinks) and the event bus
// (Events: its streams and consumer groups).
package api

import (
	"net/http"

	"connectrpc.com/connect"

	"github.com/wail-cdc/wail/api/wail/v1/wailv1connect"
)

// Services are the handlers of the API. A nil Producer leaves
// ProducerService unmounted (a resolver-only process): its procedures
// answer 404, as an unknown path does.
type Services struct {
	Producer wailv1connect.ProducerServiceHandler
	Admin    wailv1connect.AdminServiceHandler
	Events   wailv1connect.EventServiceHandler
	// ProducerOptions are added to Producer's options only, EventOptions
	// to Events' only, and WriteOptions to those of Producer's Write and
	// WriteStream only.
	ProducerOptions, EventOptions, WriteOptions []connect.HandlerOption
	// MaxBatch, above 0, is limits.max_batch_mutations: a binary Write or
	// WriteStream request of more mutations is refused (InvalidArgument)
	// before any of them is decoded (wirecodec.go).
	MaxBatch int
	// MaxMessages, above 0, bounds the messages an AdminService or
	// EventService request holds: one of more is refused
	// (InvalidArgument) before it is decoded (submessages.go).
	MaxMessages int
}

// Unimplemented are services whose every procedure answers Unimplemented
// (the options decide otherwise, as a request gate does while starting).
func Unimplemented() Services {
	return Services{
		Producer: wailv1connect.UnimplementedProducerServiceHandler{},
		Admin:    wailv1connect.UnimplementedAdminServiceHandler{},
		Events:   wailv1connect.UnimplementedEventServiceHandler{},
	}
}

// Mux is an http.ServeMux that remembers its patterns, so that a test can
// check that every route has a permission (Covered).
type Mux struct {
	*http.ServeMux
	patterns []string
}

// NewMux returns an empty Mux.
func NewMux() *Mux { return &Mux{ServeMux: http.NewServeMux()} }

// Handle registers h for pattern.
func (m *Mux) Handle(pattern string, h http.Handler) {
	m.patterns = append(m.patterns, pattern)
	m.ServeMux.Handle(pattern, h)
}

// HandleFunc registers f for pattern.
func (m *Mux) HandleFunc(pattern string, f func(http.ResponseWriter, *http.Request)) {
	m.Handle(pattern, http.HandlerFunc(f))
}

// Patterns are the patterns registered, in order.
func (m *Mux) Patterns() []string { return m.patterns }

// Mount adds the services to mux, each with JSONCodecs and opts; the
// Producer service decodes binary writes with writeCodec, and counts the
// mutations of JSON ones before decoding them (producerJSON).
func Mount(mux *Mux, s Services, opts ...connect.HandlerOption) {
	all := append(JSONCodecs(), opts...)
	if s.Producer != nil {
		popts := append(append(append([]connect.HandlerOption(nil), all...), producerCodec(s.MaxBatch)), producerJSONCodecs(s.MaxBatch)...)
		popts = append(popts, s.ProducerOptions...)
		mux.Handle(wailv1connect.NewProducerServiceHandler(s.Producer, popts...))
		if len(s.WriteOptions) > 0 { // the writes' own handlers, at their exact paths
			_, writes := wailv1connect.NewProducerServiceHandler(s.Producer, append(popts, s.WriteOptions...)...)
			mux.Handle(wailv1connect.ProducerServiceWriteProcedure, writes)
			mux.Handle(wailv1connect.ProducerServiceWriteStreamProcedure, writes)
		}
	}
	bounded := append(append([]connect.HandlerOption(nil), all...), boundedCodecs(s.MaxMessages)...)
	mux.Handle(wailv1connect.NewAdminServiceHandler(s.Admin, bounded...))
	eopts := append(append([]connect.HandlerOption(nil), bounded...), s.EventOptions...)
	mux.Handle(wailv1connect.NewEventServiceHandler(s.Events, eopts...))
}
