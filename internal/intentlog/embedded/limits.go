package embedded

import "context"

// RecordLimit returns the largest record, encoded as in a batch (see
// batch.go), that an Append to any topic takes: Options.MaxRecordBytes,
// or less if a batch of that one record would exceed MaxBatchBytes. The
// proxy refuses values whose event would not fit.
func (l *Log) RecordLimit(context.Context, string) (int, string, error) {
	return int(l.recordLimit), l.recordLimitSource, nil
}

// AppendLimit returns the largest total of encoded records (each counted
// as RecordLimit counts one) that one Append to any topic takes:
// MaxBatchBytes less the batch header. A larger Append fails as a whole
// with ErrTooLarge, however small each record.
func (l *Log) AppendLimit(context.Context, string) (int, error) {
	return int(l.opts.MaxBatchBytes - batchHeaderLen), nil
}
