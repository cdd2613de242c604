package embedded

import (
	"context"
	"fmt"

	"github.com/wail-cdc/wail/internal/intentlog"
)

// Lost implements intentlog.Log: the gaps between a partition's segments.
// Only a repair leaves them (Open refuses a gap that the partition's #lost
// file does not list); readers skip them.
func (l *Log) Lost(_ context.Context, topic string, partition int32) ([]intentlog.Range, error) {
	p, err := l.partition("lost offsets", topic, partition)
	if err != nil {
		return nil, err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil, fmt.Errorf("embedded: lost offsets %s/%d: %w", topic, partition, p.closedErr())
	}
	var out []intentlog.Range
	for i := 0; i+1 < len(p.segs); i++ {
		if next := p.segs[i+1].base; p.segs[i].next < next {
			out = append(out, intentlog.Range{From: p.segs[i].next, To: next})
		}
	}
	return out, nil
}
