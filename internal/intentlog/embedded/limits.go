package embedded

import (
	"context"
	"fmt"
)

// RecordLimit returns the largest record, encoded as in a batch (see
// batch.go), that an Append to any topic takes: Options.MaxRecordBytes,
// or less if a batch of that one record would exceed MaxBatchBytes. The
// proxy refuses values whose event would not fit.
func (l *Log) RecordLimit(context.Context, string) (int, string, error) {
	n := min(l.opts.MaxRecordBytes, l.opts.MaxBatchBytes-batchHeaderLen)
	return int(n), fmt.Sprintf("the embedded log's record limit of %d bytes", n), nil
}
