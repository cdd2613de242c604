package schemaregistry

import (
	"context"

	"github.com/wail-cdc/wail/internal/schema"
)

// What typed tables need of the registry: a schema compiled before it is
// registered (to find its message type first), and a subject's latest
// schema, compiled.

// Compile compiles a schema as Register would (its references resolved in
// the registry as it is now) without registering it.
func (r *Registry) Compile(ctx context.Context, req SchemaRequest) (*schema.Schema, error) {
	_, s, err := r.compileRequest(ctx, req)
	return s, err
}

// compileRequest compiles a request's schema against the registry as it is
// now, and returns that state too.
func (r *Registry) compileRequest(ctx context.Context, req SchemaRequest) (*state, *schema.Schema, error) {
	if e := req.validate(); e != nil {
		return nil, nil, e
	}
	st, err := r.read(ctx)
	if err != nil {
		return nil, nil, err
	}
	refs, e := resolveRefs(st, req.References)
	if e != nil {
		return nil, nil, e
	}
	s, err := r.compile(ctx, st, req.Schema, refs, false)
	return st, s, err
}

// Latest returns the id and the compiled schema of a subject's newest live
// version (an *Error with CodeSubjectNotFound when it has none).
func (r *Registry) Latest(ctx context.Context, subject string) (int, *schema.Schema, error) {
	st, err := r.read(ctx)
	if err != nil {
		return 0, nil, err
	}
	v, e := st.version(subject, latest, false)
	if e != nil {
		return 0, nil, e
	}
	s, err := r.compiledByID(ctx, st, v.ID)
	if err != nil {
		return 0, nil, err
	}
	return v.ID, s, nil
}

// ByID returns the compiled schema of an id (an *Error with
// CodeSchemaNotFound when there is none, after a hard delete).
func (r *Registry) ByID(ctx context.Context, id int) (*schema.Schema, error) {
	st, err := r.read(ctx)
	if err != nil {
		return nil, err
	}
	return r.compiledByID(ctx, st, id)
}

// LiveIDs returns the schema ids of a subject's live versions, newest
// first.
func (r *Registry) LiveIDs(ctx context.Context, subject string) ([]int, error) {
	st, err := r.read(ctx)
	if err != nil {
		return nil, err
	}
	sub, e := st.subject(subject, false)
	if e != nil {
		return nil, e
	}
	vs := sub.live(false)
	ids := make([]int, 0, len(vs))
	for i := len(vs) - 1; i >= 0; i-- {
		ids = append(ids, vs[i].ID)
	}
	return ids, nil
}
