package server

import (
	"context"
	"errors"
	"fmt"

	"github.com/wail-cdc/wail/internal/eventbus"
	"github.com/wail-cdc/wail/internal/group"
)

// groupTable is a served table as consumer groups (and sinks) see it.
func (s *Server) groupTable(name string) (group.Table, bool) {
	t, ok := s.catalog.Resolving(name)
	if !ok {
		return group.Table{}, false
	}
	var created int64
	if !t.CreatedAt.IsZero() {
		created = t.CreatedAt.UnixMicro()
	}
	return group.Table{Name: t.Name, Topic: eventbus.Topic(t.Name), Partitions: t.Partitions, Created: created}, true
}

// tableIncarnation is a served table's created_at_us (0: not served):
// sinks are run only for the table they were created for.
func (s *Server) tableIncarnation(name string) int64 {
	t, ok := s.catalog.Resolving(name)
	if !ok || t.CreatedAt.IsZero() {
		return 0
	}
	return t.CreatedAt.UnixMicro()
}

// configSinks saves the sinks of the configuration (sinks.webhooks).
func (s *Server) configSinks(ctx context.Context) error {
	var errs []error
	for _, w := range s.cfg.Sinks.Webhooks {
		def, err := w.Sink()
		if err == nil {
			err = s.sinks.Apply(ctx, def)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("sink %s of table %s: %w", w.Name, w.Table, err))
		}
	}
	return errors.Join(errs...)
}
