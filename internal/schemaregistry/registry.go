// Package schemaregistry is a schema registry that speaks the Confluent
// Schema Registry REST API (the subset clients use: subjects, versions,
// schemas by id, references, compatibility levels per subject and global,
// compatibility tests, soft and hard deletes, modes) for Protobuf schemas.
// Clients written for Confluent's registry (franz-go's sr, confluent-kafka's
// SchemaRegistryClient, the Java serializers) use it unchanged.
//
// Registry holds the logic; Handler serves it over HTTP. Schemas compile
// with package schema (a real Protobuf compiler); a new version is checked
// with the subject's compatibility level under the Confluent registry's
// Protobuf rules, and an incompatible one is refused with status 409 and a
// message per breaking change.
//
// The whole registry is one JSON document kept by a Storage and changed by
// compare-and-set: a change reads the document, applies itself, and saves
// the result only if nobody saved in between, else starts over. Processes
// sharing a Storage therefore agree on every id and version with no
// leader. wail keeps the document in its store's table catalog (Catalog),
// next to the tables' definitions. Ids are never reused, unless IMPORT mode
// is told to give a deleted one again. A read reuses the
// decoded document while the stored bytes are unchanged.
package schemaregistry

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/wail-cdc/wail/internal/schema"
)

// Limits bound what the registry accepts. Zero fields take the defaults.
type Limits struct {
	// MaxSchemaBytes bounds one schema's text (error 42209 past it).
	MaxSchemaBytes int
	// MaxReferences bounds the files a schema imports, directly or not.
	MaxReferences int
	// MaxDocumentBytes bounds the whole registry's document, all schemas
	// together; a registration past it is refused (42209).
	MaxDocumentBytes int
	// MaxCompiles bounds the schema compiles that run at once (others
	// wait); CompileTimeout bounds each, its wait included (50002 past
	// it).
	MaxCompiles    int
	CompileTimeout time.Duration
}

// DefaultLimits are the limits used for zero fields.
var DefaultLimits = Limits{MaxSchemaBytes: 256 << 10, MaxReferences: 64, MaxDocumentBytes: 8 << 20, MaxCompiles: 2, CompileTimeout: 10 * time.Second}

func (l Limits) withDefaults() Limits {
	if l.MaxSchemaBytes <= 0 {
		l.MaxSchemaBytes = DefaultLimits.MaxSchemaBytes
	}
	if l.MaxReferences <= 0 {
		l.MaxReferences = DefaultLimits.MaxReferences
	}
	if l.MaxDocumentBytes <= 0 {
		l.MaxDocumentBytes = DefaultLimits.MaxDocumentBytes
	}
	if l.MaxCompiles <= 0 {
		l.MaxCompiles = DefaultLimits.MaxCompiles
	}
	if l.CompileTimeout <= 0 {
		l.CompileTimeout = DefaultLimits.CompileTimeout
	}
	return l
}

// maxSwaps bounds how often a change starts over after losing a swap.
const maxSwaps = 32

// Registry is the registry's logic over a Storage. Safe for concurrent use.
type Registry struct {
	storage Storage
	lim     Limits
	gate    *compileGate

	mu       sync.Mutex
	raw      []byte // the document last read
	st       *state // raw decoded; read-only
	compiled map[int]compiledSchema
	onChange func(subject string)
}

// OnChange makes fn run after each change of a subject's versions made
// through this registry (a register, a delete): what caches a subject's
// schemas forgets it. Call it before serving.
func (r *Registry) OnChange(fn func(subject string)) { r.onChange = fn }

// changed tells OnChange of a subject changed, unless err says it was not.
func (r *Registry) changed(subject string, err error) {
	if err == nil && r.onChange != nil {
		r.onChange(subject)
	}
}

// New returns a registry over storage.
func New(storage Storage, lim Limits) *Registry {
	lim = lim.withDefaults()
	return &Registry{storage: storage, lim: lim, gate: newCompileGate(lim), compiled: map[int]compiledSchema{}}
}

// read returns the current document, decoded; callers must not change it.
func (r *Registry) read(ctx context.Context) (*state, error) {
	raw, err := r.storage.Load(ctx)
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.st != nil && bytes.Equal(raw, r.raw) {
		return r.st, nil
	}
	st, err := decodeState(raw)
	if err != nil {
		return nil, err
	}
	r.raw, r.st = raw, st
	return st, nil
}

// update applies fn to a fresh copy of the document and saves it by
// compare-and-set, starting over when another change got in first. fn
// returns false to save nothing. A document past MaxDocumentBytes is
// refused.
func (r *Registry) update(ctx context.Context, fn func(st *state) (save bool, err error)) error {
	return r.swap(ctx, true, fn)
}

// cleanup is update for deletes: not bounded by MaxDocumentBytes, since at
// the limit deleting is the way out (and a soft delete, which a permanent
// one needs first, marks each version: a few bytes more).
func (r *Registry) cleanup(ctx context.Context, fn func(st *state) (save bool, err error)) error {
	return r.swap(ctx, false, fn)
}

func (r *Registry) swap(ctx context.Context, bounded bool, fn func(st *state) (save bool, err error)) error {
	for range maxSwaps {
		raw, err := r.storage.Load(ctx)
		if err != nil {
			return err
		}
		st, err := decodeState(raw)
		if err != nil {
			return err
		}
		save, err := fn(st)
		if err != nil || !save {
			return err
		}
		b, err := st.encode()
		if err != nil {
			return fmt.Errorf("schema registry: encode: %w", err)
		}
		if bounded && len(b) > r.lim.MaxDocumentBytes {
			return errf(http.StatusUnprocessableEntity, CodeSchemaTooLarge,
				"The registry would hold %d bytes of schemas, over schema_registry.max_document_bytes (%d): delete unused subjects permanently or raise the limit",
				len(b), r.lim.MaxDocumentBytes)
		}
		ok, err := r.storage.Swap(ctx, raw, b)
		if err != nil {
			return err
		}
		if ok {
			return nil
		}
	}
	return errf(http.StatusInternalServerError, CodeStore, "The registry changed %d times while this change was made; try again", maxSwaps)
}

// compile compiles a schema text with its references, resolved in st:
// for a new schema (stored false) only live versions, for a stored one
// soft-deleted versions too, as the Confluent registry resolves them (a
// schema keeps compiling, for reads by id, after what it imports was
// soft-deleted behind its own deleted versions).
func (r *Registry) compile(ctx context.Context, st *state, text string, refs []Reference, stored bool) (*schema.Schema, error) {
	lim := r.lim
	if stored {
		// A stored schema was within the limits it was registered under;
		// lowered since (max_schema_bytes, max_references), they bound new
		// schemas only, or its records could no longer be read by id. The
		// document bounds what is stored, and the gate each compile.
		lim.MaxSchemaBytes, lim.MaxReferences = math.MaxInt32, math.MaxInt32
	}
	return compileWith(ctx, r.gate, stored, lim, text, refs, func(_ context.Context, ref Reference) (string, []Reference, string, error) {
		v, e := st.version(ref.Subject, ref.Version, stored)
		if e != nil {
			return "", nil, "", invalidSchema("reference %q (subject %q version %d): %s", ref.Name, ref.Subject, ref.Version, e.Message)
		}
		rec := st.Schemas[v.ID]
		return rec.Text, rec.Refs, fmt.Sprintf("%s/%d", ref.Subject, v.Version), nil
	})
}

// compileWith compiles a schema text with its references, each fetched
// (its text, its own references, and its origin: subject/version) by
// fetch, within lim and gate (stored: a stored schema, compiled again).
func compileWith(ctx context.Context, gate *compileGate, stored bool, lim Limits, text string, refs []Reference,
	fetch func(context.Context, Reference) (text string, refs []Reference, origin string, err error)) (*schema.Schema, error) {
	if len(text) > lim.MaxSchemaBytes {
		return nil, errf(http.StatusUnprocessableEntity, CodeSchemaTooLarge,
			"The schema is %d bytes, over schema_registry.max_schema_bytes (%d)", len(text), lim.MaxSchemaBytes)
	}
	return gate.run(ctx, stored, func(ctx context.Context) (*schema.Schema, error) { return compileRefs(ctx, lim, text, refs, fetch) })
}

// compileRefs is compileWith within its gate.
func compileRefs(ctx context.Context, lim Limits, text string, refs []Reference,
	fetch func(context.Context, Reference) (text string, refs []Reference, origin string, err error)) (*schema.Schema, error) {
	var imports []schema.File
	seen := map[string]string{} // import path -> subject/version
	var walk func(refs []Reference) error
	walk = func(refs []Reference) error {
		for _, ref := range refs {
			if _, ok := seen[ref.Name]; !ok && len(seen) >= lim.MaxReferences {
				return invalidSchema("more than %d referenced files (schema_registry.max_references)", lim.MaxReferences)
			}
			src, sub, origin, err := fetch(ctx, ref)
			if err != nil {
				return err
			}
			if prev, ok := seen[ref.Name]; ok {
				if prev != origin {
					return invalidSchema("two references named %q: %s and %s", ref.Name, prev, origin)
				}
				continue
			}
			seen[ref.Name] = origin
			imports = append(imports, schema.File{Path: ref.Name, Source: src, Origin: origin})
			if err := walk(sub); err != nil {
				return err
			}
		}
		return nil
	}
	if err := walk(refs); err != nil {
		return nil, err
	}
	s, err := schema.Compile(ctx, schema.File{Source: text}, imports, schema.Limits{MaxFileBytes: lim.MaxSchemaBytes, MaxFiles: lim.MaxReferences})
	if err != nil {
		if errors.Is(err, schema.ErrInvalid) {
			// "Invalid schema: " says it already.
			return nil, invalidSchema("%s", strings.TrimPrefix(err.Error(), schema.ErrInvalid.Error()+": "))
		}
		return nil, err
	}
	return s, nil
}

// compiledByID compiles a stored schema once. A compiled schema is kept
// while its id holds the same schema: new ids are never reused, but IMPORT
// mode may give a new schema the id of one deleted permanently.
func (r *Registry) compiledByID(ctx context.Context, st *state, id int) (*schema.Schema, error) {
	rec := st.Schemas[id]
	if rec == nil {
		return nil, schemaNotFound(id)
	}
	r.mu.Lock()
	c, ok := r.compiled[id]
	r.mu.Unlock()
	if ok && c.fingerprint == rec.Fingerprint {
		return c.schema, nil
	}
	s, err := r.compile(ctx, st, rec.Text, rec.Refs, true)
	if e := (*Error)(nil); errors.As(err, &e) && e.Status == http.StatusServiceUnavailable {
		return nil, fmt.Errorf("schema registry: stored schema %d: %w", id, err) // busy: retry later
	}
	if err != nil {
		return nil, fmt.Errorf("schema registry: stored schema %d no longer compiles: %w", id, err)
	}
	r.mu.Lock()
	if len(r.compiled) >= 4096 {
		clear(r.compiled)
	}
	r.compiled[id] = compiledSchema{schema: s, fingerprint: rec.Fingerprint}
	r.mu.Unlock()
	return s, nil
}

// compiledSchema is a stored schema compiled, with the fingerprint it was
// stored with.
type compiledSchema struct {
	schema      *schema.Schema
	fingerprint string
}

func fingerprint(s *schema.Schema) string {
	fp := s.Fingerprint()
	return hex.EncodeToString(fp[:])
}
