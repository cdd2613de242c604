package eventbus_test

import (
	"net/http"

	"github.com/wail-cdc/wail/api/wail/v1/wailv1connect"
	"github.com/wail-cdc/wail/internal/api"
	"github.com/wail-cdc/wail/internal/eventbus"
)

func init() {
	eventbus.ServeAPI = func(svc *eventbus.Service, l eventbus.APILimits) (string, http.Handler, func() int, func()) {
		e := api.NewEventService(svc).WithLimits(api.SlotLimits{MaxStreams: l.MaxStreams, Opened: l.Opened})
		pattern, h := wailv1connect.NewEventServiceHandler(e)
		return pattern, h, e.Open, e.Close
	}
}
