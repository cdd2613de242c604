// Package api is the one place where wail's API meets HTTP: it mounts the
// three Connect services (ProducerService, AdminService, EventService) on
// a mux with the options every one of them gets (the strict JSON codec,
// codec.go), so that what guards the API (TLS, authentication,
// authorization) is wired once, for every procedure. The services' work
// stays with their domains: the proxy (writes), the event bus (streams)
// and the server (tables, dead letters).
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
	// ProducerOptions are added to Producer's options only.
	ProducerOptions []connect.HandlerOption
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

// Mount adds the services to mux, each with JSONCodecs and opts.
func Mount(mux *http.ServeMux, s Services, opts ...connect.HandlerOption) {
	all := append(JSONCodecs(), opts...)
	if s.Producer != nil {
		popts := append(append([]connect.HandlerOption(nil), all...), s.ProducerOptions...)
		mux.Handle(wailv1connect.NewProducerServiceHandler(s.Producer, popts...))
	}
	mux.Handle(wailv1connect.NewAdminServiceHandler(s.Admin, all...))
	mux.Handle(wailv1connect.NewEventServiceHandler(s.Events, all...))
}
