package api

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"connectrpc.com/connect"

	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
	"github.com/wail-cdc/wail/internal/proxy"
	"github.com/wail-cdc/wail/internal/store"
)

// Writer is what ProducerService writes to and reads from: the proxy
// (proxy.Proxy).
type Writer interface {
	// Write writes a batch; every mutation has its own result.
	Write(ctx context.Context, muts []proxy.Mutation) []proxy.Result
	// Get reads a key from the store at its strongest level.
	Get(ctx context.Context, table string, key []byte) (store.Row, bool, error)
	// ValueJSON prints a value of a typed table as JSON.
	ValueJSON(ctx context.Context, table string, value []byte) ([]byte, error)
	// MaxBatch is the most mutations a batch may have
	// (limits.max_batch_mutations).
	MaxBatch() int
	// ServerTime is the process's monotonic clock in nanoseconds (never
	// 0): write-stream answers carry it (server_time), for clients to set
	// stamp_before, which the Writer compares with it.
	ServerTime() uint64
}

// ProducerService serves wail.v1.ProducerService on a Writer.
type ProducerService struct {
	p Writer
	// admit, if set, may refuse writes (Unavailable) before they are
	// stamped: the proxy id's lease is not valid.
	admit func() error
	// streams count the write streams open; inFlight and maxBatchBytes
	// are StreamLimits.InFlight and MaxBatchBytes (writestream.go).
	streams       *streamSlots
	inFlight      int
	maxBatchBytes uint64
	closing       chan struct{}
	closeOnce     sync.Once
}

// Close ends the write streams (at server shutdown): each stops reading,
// answers the batches it runs and ends.
func (s *ProducerService) Close() { s.closeOnce.Do(func() { close(s.closing) }) }

// NewProducerService returns the ProducerService handler, with the
// default write stream limits (see WithStreamLimits).
func NewProducerService(p Writer) *ProducerService {
	return (&ProducerService{p: p, closing: make(chan struct{})}).WithStreamLimits(StreamLimits{})
}

// WithAdmit makes every write ask admit first; an error refuses it with
// Unavailable before a version is stamped. Call it before serving.
func (s *ProducerService) WithAdmit(admit func() error) *ProducerService {
	s.admit = admit
	return s
}

func (s *ProducerService) admitted() error {
	if s.admit == nil {
		return nil
	}
	if err := s.admit(); err != nil {
		return connect.NewError(connect.CodeUnavailable, err)
	}
	return nil
}

// writeCode maps a proxy error to its Connect/gRPC code.
func writeCode(err error) connect.Code {
	switch {
	case errors.Is(err, proxy.ErrUnknownTable):
		return connect.CodeNotFound
	case errors.Is(err, proxy.ErrInvalid), errors.Is(err, proxy.ErrNoJSON):
		return connect.CodeInvalidArgument
	case errors.Is(err, proxy.ErrOverloaded):
		return connect.CodeResourceExhausted
	case errors.Is(err, proxy.ErrLogRefused):
		return connect.CodeFailedPrecondition
	case errors.Is(err, context.Canceled):
		return connect.CodeCanceled
	case errors.Is(err, context.DeadlineExceeded):
		return connect.CodeDeadlineExceeded
	}
	return connect.CodeUnavailable
}

// codeless is a write error as its RPC answers it: without the leading
// "unavailable: " that proxy.ErrUnavailable puts in front of its message,
// since the code says it already (a client printed "unavailable:
// unavailable: the store write's outcome is unknown ..."). It unwraps to
// the error, so errors.Is on the server sees the same chain.
type codeless struct {
	msg string
	err error
}

func (e codeless) Error() string { return e.msg }
func (e codeless) Unwrap() error { return e.err }

// writeErr is err as an RPC answers it (codeless).
func writeErr(err error) error {
	prefix := proxy.ErrUnavailable.Error() + ": "
	if msg := err.Error(); errors.Is(err, proxy.ErrUnavailable) && strings.HasPrefix(msg, prefix) {
		return codeless{msg: strings.TrimPrefix(msg, prefix), err: err}
	}
	return err
}

func toProto(r proxy.Result) *wailv1.WriteResult {
	out := &wailv1.WriteResult{
		Version: r.Version, IntentLogged: r.IntentLogged, Stored: r.Stored, Superseded: r.Superseded,
	}
	if r.Err != nil {
		out.Error = &wailv1.Error{Code: writeCode(r.Err).String(), Message: writeErr(r.Err).Error(), RetryAfterMs: r.RetryAfter.Milliseconds()}
	}
	return out
}

// one runs a single mutation; its failure is the RPC's failure. A failure
// after the version was stamped carries the WriteResult (version,
// intent_logged, stored) as an error detail, so the client can match the
// ABORT intent or a later event to its failed write, as Write's results do.
func (s *ProducerService) one(ctx context.Context, m proxy.Mutation) (*wailv1.WriteResult, error) {
	if err := s.admitted(); err != nil {
		return nil, err
	}
	r := s.p.Write(ctx, []proxy.Mutation{m})[0]
	if r.Err != nil {
		ce := connect.NewError(writeCode(r.Err), writeErr(r.Err))
		if r.RetryAfter > 0 {
			// the hint, as a wail.v1.Error detail
			if d, err := connect.NewErrorDetail(toProto(r).Error); err == nil {
				ce.AddDetail(d)
			}
			retryLater(ce, r.RetryAfter.Truncate(time.Millisecond)) // and as the standard google.rpc.RetryInfo
		}
		if r.Version != 0 {
			res := toProto(r)
			res.Error = nil // the error itself says it
			if d, err := connect.NewErrorDetail(res); err == nil {
				ce.AddDetail(d)
			}
		}
		return nil, ce
	}
	return toProto(r), nil
}

// Put writes one key.
func (s *ProducerService) Put(ctx context.Context, req *connect.Request[wailv1.PutRequest]) (*connect.Response[wailv1.PutResponse], error) {
	m, err := value(proxy.Mutation{Table: req.Msg.Table, Key: req.Msg.Key}, req.Msg.Value, req.Msg.ValueJson)
	if err != nil {
		return nil, connect.NewError(connect.CodeInvalidArgument, err)
	}
	r, err := s.one(ctx, m)
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&wailv1.PutResponse{Result: r}), nil
}

// Delete deletes one key.
func (s *ProducerService) Delete(ctx context.Context, req *connect.Request[wailv1.DeleteRequest]) (*connect.Response[wailv1.DeleteResponse], error) {
	r, err := s.one(ctx, proxy.Mutation{Table: req.Msg.Table, Key: req.Msg.Key, Delete: true})
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&wailv1.DeleteResponse{Result: r}), nil
}

// Write writes a batch; every mutation has its own result and error.
func (s *ProducerService) Write(ctx context.Context, req *connect.Request[wailv1.WriteRequest]) (*connect.Response[wailv1.WriteResponse], error) {
	if err := s.admitted(); err != nil {
		return nil, err
	}
	muts, err := s.batch(req.Msg.Mutations)
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&wailv1.WriteResponse{Results: resultsProto(s.p.Write(ctx, muts))}), nil
}

// batch checks a batch's size and ops and converts it; its error is a
// *connect.Error.
func (s *ProducerService) batch(in []*wailv1.Mutation) ([]proxy.Mutation, error) {
	if err := s.fits(in); err != nil {
		return nil, err
	}
	muts := make([]proxy.Mutation, len(in))
	for i, m := range in {
		mut, err := mutation(i, m)
		if err != nil {
			return nil, err
		}
		muts[i] = mut
	}
	return muts, nil
}

// fits refuses a batch of more than limits.max_batch_mutations.
func (s *ProducerService) fits(in []*wailv1.Mutation) error {
	if len(in) > s.p.MaxBatch() {
		return connect.NewError(connect.CodeInvalidArgument,
			fmt.Errorf("batch has %d mutations, the limit is %d (limits.max_batch_mutations)", len(in), s.p.MaxBatch()))
	}
	return nil
}

// mutation checks the op and value of a batch's mutation i and converts
// it; its error is a *connect.Error.
func mutation(i int, m *wailv1.Mutation) (proxy.Mutation, error) {
	switch m.Op {
	case wailv1.Op_OP_UNSPECIFIED, wailv1.Op_OP_UPSERT, wailv1.Op_OP_DELETE:
	default:
		return proxy.Mutation{}, connect.NewError(connect.CodeInvalidArgument,
			fmt.Errorf("mutation %d: op %s is not a write: use OP_UPSERT or OP_DELETE", i, m.Op))
	}
	mut, err := value(proxy.Mutation{Table: m.Table, Key: m.Key, Delete: m.Op == wailv1.Op_OP_DELETE}, m.Value, m.ValueJson)
	if err != nil {
		return proxy.Mutation{}, connect.NewError(connect.CodeInvalidArgument, fmt.Errorf("mutation %d: %w", i, err))
	}
	return mut, nil
}

func resultsProto(res []proxy.Result) []*wailv1.WriteResult {
	out := make([]*wailv1.WriteResult, len(res))
	for i := range res {
		out[i] = toProto(res[i])
	}
	return out
}

// value sets a mutation's value from the API's value or value_json (one
// of them).
func value(m proxy.Mutation, bin []byte, json string) (proxy.Mutation, error) {
	switch {
	case json != "" && len(bin) > 0:
		return m, fmt.Errorf("%w: set value or value_json, not both", proxy.ErrInvalid)
	case json != "" && m.Delete:
		return m, fmt.Errorf("%w: a delete has no value", proxy.ErrInvalid)
	case json != "":
		m.Value, m.JSON = []byte(json), true
	default:
		m.Value = bin
	}
	return m, nil
}

// Get reads a key from the store.
func (s *ProducerService) Get(ctx context.Context, req *connect.Request[wailv1.GetRequest]) (*connect.Response[wailv1.GetResponse], error) {
	row, found, err := s.p.Get(ctx, req.Msg.Table, req.Msg.Key)
	if err != nil {
		return nil, connect.NewError(writeCode(err), writeErr(err))
	}
	out := &wailv1.GetResponse{Version: row.Version, Deleted: row.Deleted}
	if found && !row.Deleted {
		out.Found, out.Value = true, row.Value
		if req.Msg.ValueJson {
			j, err := s.p.ValueJSON(ctx, req.Msg.Table, row.Value)
			if err != nil {
				return nil, connect.NewError(writeCode(err), writeErr(err))
			}
			out.ValueJson = string(j)
		}
	}
	return connect.NewResponse(out), nil
}
