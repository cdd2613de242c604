package eventbus

import "net/http"

// APILimits are the limits of the API's handler on the streams open
// (api.SlotLimits).
type APILimits struct {
	MaxStreams int
	Opened     func(open int)
}

// ServeAPI returns svc served as wail.v1.EventService as the server
// serves it (package api's EventService), the number of streams it has
// open, and its Close. api_test.go sets it: an external test file, since
// package api imports this one.
var ServeAPI func(svc *Service, l APILimits) (pattern string, h http.Handler, open func() int, closeAll func())

// serveEvents mounts svc's API on mux and returns its count of open
// streams and a close that ends the API's and svc's streams.
func serveEvents(mux *http.ServeMux, svc *Service, l APILimits) (open func() int, closeAll func()) {
	pattern, h, open, closeAPI := ServeAPI(svc, l)
	mux.Handle(pattern, h)
	return open, func() { closeAPI(); svc.Close() }
}
