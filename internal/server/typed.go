package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"connectrpc.com/connect"

	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
	"github.com/wail-cdc/wail/internal/catalog"
	"github.com/wail-cdc/wail/internal/config"
	"github.com/wail-cdc/wail/internal/eventbus"
	"github.com/wail-cdc/wail/internal/proxy"
	"github.com/wail-cdc/wail/internal/schema"
	"github.com/wail-cdc/wail/internal/schemaregistry"
)

// Typed tables: a table's key and value message types are saved with its
// definition (catalog.Table.KeyMessage, ValueMessage); their schemas are
// the latest versions of the subjects <event topic>-key and
// <event topic>-value (the topic name strategy) in wail's schema registry.

// Parts of a typed table, the subjects' suffixes.
const (
	partKey   = "key"
	partValue = "value"
)

// subject is the registry subject of a table's keys or values: the event
// topic as the log names it, then -key or -value.
func (s *Server) subject(table, part string) string { return subjectOf(s.cfg, table, part) }

func subjectOf(cfg config.Config, table, part string) string {
	topic := eventbus.Topic(table)
	if cfg.Log.Kind == config.LogKafka {
		topic = strings.ReplaceAll(cfg.Log.Kafka.EventTopic, "{table}", table)
	}
	return topic + "-" + part
}

// schemaRequest is the registry's form of an API TypeSchema.
func schemaRequest(ts *wailv1.TypeSchema) schemaregistry.SchemaRequest {
	req := schemaregistry.SchemaRequest{Schema: ts.Schema, SchemaType: schemaregistry.Protobuf}
	for _, r := range ts.References {
		req.References = append(req.References, schemaregistry.Reference{Name: r.Name, Subject: r.Subject, Version: int(r.Version)})
	}
	return req
}

// registerType registers a table's key or value schema under its subject
// (with the subject's compatibility check) and returns the full name of
// its message type. want, when set, is the message type the table has: a
// schema that names another is refused.
func (s *Server) registerType(ctx context.Context, table, part string, ts *wailv1.TypeSchema, want string) (string, error) {
	req := schemaRequest(ts)
	sch, err := s.schemas.Compile(ctx, req)
	if err != nil {
		return "", registryError(part, err)
	}
	name := ts.Message
	if name == "" {
		name = want
	}
	if name == "" {
		return "", connect.NewError(connect.CodeInvalidArgument,
			fmt.Errorf("%w: the %s schema needs its message type (--%s-message): one of %s", catalog.ErrInvalid, part, part, strings.Join(sch.MessageNames(), ", ")))
	}
	msg, err := sch.MessageType(name)
	if err != nil {
		return "", connect.NewError(connect.CodeInvalidArgument, fmt.Errorf("%w: %s message: %w", catalog.ErrInvalid, part, err))
	}
	full := string(msg.Descriptor().FullName())
	if want != "" && full != want {
		return "", connect.NewError(connect.CodeInvalidArgument,
			fmt.Errorf("%w: table %s's %s message type is %s, not %s: a table's message types cannot change (evolve %s instead)", catalog.ErrInvalid, table, part, want, full, want))
	}
	subject := s.subject(table, part)
	if _, err := s.schemas.Register(ctx, subject, req); err != nil {
		return "", registryError(part, err)
	}
	s.values.forget(subject)
	return full, nil
}

// registryError maps a registry refusal to an API error: an incompatible
// schema is FailedPrecondition, another refusal InvalidArgument, anything
// else (the store) Unavailable.
func registryError(part string, err error) error {
	var e *schemaregistry.Error
	switch {
	case errors.As(err, &e) && e.Status == http.StatusConflict:
		return connect.NewError(connect.CodeFailedPrecondition, fmt.Errorf("%s schema: %w", part, err))
	case errors.As(err, &e) && e.Status >= 400 && e.Status < 500:
		return connect.NewError(connect.CodeInvalidArgument, fmt.Errorf("%w: %s schema: %w", catalog.ErrInvalid, part, err))
	}
	return connect.NewError(connect.CodeUnavailable, fmt.Errorf("%s schema: %w", part, err))
}

// typedValues is the proxy's Validator: it checks a typed table's keys and
// values against the latest schemas of its subjects and converts JSON
// values to Protobuf binary. A subject's latest schema is cached for
// ttl (catalog_refresh): a schema registered by another process is taken
// up within that time (at once by a value that needs it: see recheck),
// one registered through this process at once.
type typedValues struct {
	s   *Server
	ttl time.Duration
	// docs: the store keeps a queryable copy of each value
	// (store.DocumentStore): writes carry the value as JSON too.
	docs bool

	mu    sync.Mutex
	cache map[string]cachedType // by subject and message type
	byID  map[uint32]cachedSchema
	// lettered: the event ids of snapshot rows dead-lettered by this
	// process (snapshotDrifted), bounded.
	lettered map[string]bool
	// forgot counts forget calls: a read of the registry begun before
	// one (its subject maybe changed since) is not cached.
	forgot uint64
}

type cachedType struct {
	msg schema.Message
	id  int
	at  time.Time
}

// cachedSchema is the schema of an id, read at at.
type cachedSchema struct {
	sch *schema.Schema
	at  time.Time
}

func newTypedValues(s *Server, ttl time.Duration) *typedValues {
	return &typedValues{s: s, ttl: ttl, cache: map[string]cachedType{}, byID: map[uint32]cachedSchema{}, lettered: map[string]bool{}}
}

// forget drops a subject's cached schemas, and the schemas cached by id
// (a delete for good of the subject's versions may have removed some):
// the subject changed.
func (v *typedValues) forget(subject string) {
	if v == nil {
		return
	}
	v.drop(subject, true)
}

// forgetLatest drops a subject's cached latest schemas.
func (v *typedValues) forgetLatest(subject string) { v.drop(subject, false) }

func (v *typedValues) drop(subject string, byID bool) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.forgot++
	if byID {
		clear(v.byID)
	}
	for k := range v.cache {
		if strings.HasPrefix(k, subject+"\x00") {
			delete(v.cache, k)
		}
	}
}

// message returns the message type of a table's part in the subject's
// latest schema (cached), with its id and when that was read.
func (v *typedValues) message(ctx context.Context, table, part, name string) (cachedType, error) {
	subject := v.s.subject(table, part)
	k := subject + "\x00" + name
	v.mu.Lock()
	c, ok := v.cache[k]
	forgot := v.forgot
	v.mu.Unlock()
	if ok && time.Since(c.at) < v.ttl {
		return c, nil
	}
	id, sch, err := v.s.schemas.Latest(ctx, subject)
	if err != nil {
		return cachedType{}, fmt.Errorf("%w: table %s's %s schema (subject %s): %w", proxy.ErrUnavailable, table, part, subject, err)
	}
	msg, err := sch.MessageType(name)
	if err != nil {
		return cachedType{}, fmt.Errorf("%w: table %s's %s schema (subject %s, id %d) has no message %s: register one that has it: %w",
			proxy.ErrUnavailable, table, part, subject, id, name, err)
	}
	c = cachedType{msg: msg, id: id, at: time.Now()}
	v.mu.Lock()
	if v.forgot == forgot {
		if len(v.cache) >= 4096 {
			clear(v.cache)
		}
		v.cache[k] = c
	}
	v.mu.Unlock()
	return c, nil
}

// recheck: a value refused by a schema read longer ago than this is
// checked once more against the subject's latest schema (another process
// may have registered the version that has its field), so a new version
// is taken at once by a write that needs it, and a flood of bad values
// reads the registry at most once per recheck per subject.
const recheck = 250 * time.Millisecond

// with runs fn on a table part's message type; a refusal is retried once
// on the latest schema when the cached one is older than recheck. It
// returns the type fn took.
func (v *typedValues) with(ctx context.Context, t catalog.Table, part, name string, fn func(schema.Message) error) (cachedType, error) {
	c, err := v.message(ctx, t.Name, part, name)
	if err != nil {
		return cachedType{}, err
	}
	err = fn(c.msg)
	if err != nil && time.Since(c.at) > recheck {
		v.forgetLatest(v.s.subject(t.Name, part))
		if latest, lerr := v.message(ctx, t.Name, part, name); lerr == nil {
			c, err = latest, fn(latest.msg)
		}
	}
	if err != nil {
		return cachedType{}, fmt.Errorf("%w: %s of %s: %w", proxy.ErrInvalid, part, t.Name, err)
	}
	return c, nil
}

// Validate implements proxy.Validator. A value checked (or converted)
// against a schema carries that schema's id to the store (the row keeps
// it: its event is published under it), and its JSON when the store keeps
// a queryable copy. A value not checked (validation off) carries neither:
// the resolver checks it before it is published (events.go).
func (v *typedValues) Validate(ctx context.Context, t catalog.Table, m *proxy.Mutation) error {
	if m.JSON && t.ValueMessage == "" {
		return fmt.Errorf("%w: a JSON value needs a typed table; %s has no value message type", proxy.ErrInvalid, t.Name)
	}
	check := !t.SkipValidation
	if t.KeyMessage != "" && check {
		if _, err := v.with(ctx, t, partKey, t.KeyMessage, func(msg schema.Message) error { return msg.Validate(m.Key) }); err != nil {
			return err
		}
	}
	if t.ValueMessage == "" || m.Delete || !(check || m.JSON) {
		return nil
	}
	fit := func(msg schema.Message) error { return msg.Validate(m.Value) }
	if m.JSON {
		fit = func(msg schema.Message) error {
			b, err := msg.FromJSON(m.Value)
			if err == nil {
				m.Value, m.JSON = b, false
			}
			return err
		}
	}
	c, err := v.with(ctx, t, partValue, t.ValueMessage, fit)
	if err != nil {
		return err
	}
	m.SchemaID = uint32(c.id)
	if v.docs {
		// The value fits the schema: printing it cannot fail but on a
		// bug, and then the row goes without its queryable copy.
		m.Doc, _ = c.msg.Print(m.Value)
	}
	return nil
}

// createTypes registers the schemas of a table being created and returns
// its key and value message types. A table that exists already registers
// nothing (the catalog then compares the message types: evolve a
// table's schemas with an alter). Whether it exists is read from the
// store: this process's copy of the catalog may still list a table another
// process dropped (its schemas were then not registered, and the subject
// kept the dropped table's), or not list one another process created (its
// subject then got a version from a create answered "exists").
func (s *Server) createTypes(ctx context.Context, table string, key, value *wailv1.TypeSchema) (keyMsg, valueMsg string, err error) {
	if key == nil && value == nil {
		return "", "", nil
	}
	_, exists, err := s.tableNow(ctx, table)
	if err != nil {
		return "", "", err
	}
	for _, p := range []struct {
		part string
		ts   *wailv1.TypeSchema
		out  *string
	}{{partKey, key, &keyMsg}, {partValue, value, &valueMsg}} {
		if p.ts == nil {
			continue
		}
		if exists {
			*p.out, err = s.messageOf(ctx, p.part, p.ts)
		} else {
			*p.out, err = s.registerType(ctx, table, p.part, p.ts, "")
		}
		if err != nil {
			return "", "", err
		}
	}
	return keyMsg, valueMsg, nil
}

// tableNow is the definition of table as the store holds it now (not as
// this process's catalog last read it); its error is a *connect.Error.
func (s *Server) tableNow(ctx context.Context, table string) (catalog.Table, bool, error) {
	t, ok, err := s.catalog.Load(ctx, table)
	if err != nil {
		return catalog.Table{}, false, connect.NewError(connect.CodeUnavailable, err)
	}
	return t, ok, nil
}

// messageOf is the full name of a TypeSchema's message, with nothing
// registered.
func (s *Server) messageOf(ctx context.Context, part string, ts *wailv1.TypeSchema) (string, error) {
	sch, err := s.schemas.Compile(ctx, schemaRequest(ts))
	if err != nil {
		return "", registryError(part, err)
	}
	msg, err := sch.MessageType(ts.Message)
	if err != nil {
		return "", connect.NewError(connect.CodeInvalidArgument, fmt.Errorf("%w: %s message: %w", catalog.ErrInvalid, part, err))
	}
	return string(msg.Descriptor().FullName()), nil
}

// evolveTypes registers new versions of a typed table's schemas (checked
// by each subject's compatibility level); evolved reports a new version.
func (s *Server) evolveTypes(ctx context.Context, table string, key, value *wailv1.TypeSchema) (evolved bool, err error) {
	if key == nil && value == nil {
		return false, nil
	}
	t, ok, err := s.tableNow(ctx, table)
	switch {
	case err != nil:
		return false, err
	case !ok:
		return false, connect.NewError(connect.CodeNotFound, fmt.Errorf("%w: %s", catalog.ErrNotFound, table))
	}
	for _, p := range []struct {
		part string
		ts   *wailv1.TypeSchema
		have string
	}{{partKey, key, t.KeyMessage}, {partValue, value, t.ValueMessage}} {
		if p.ts == nil {
			continue
		}
		if p.have == "" {
			return false, connect.NewError(connect.CodeInvalidArgument, fmt.Errorf(
				"%w: table %s has no %s message type: a table's types are set when it is created", catalog.ErrInvalid, table, p.part))
		}
		before, _ := s.schemas.Versions(ctx, s.subject(table, p.part), false)
		if _, err := s.registerType(ctx, table, p.part, p.ts, p.have); err != nil {
			return false, err
		}
		after, _ := s.schemas.Versions(ctx, s.subject(table, p.part), false)
		evolved = evolved || len(after) != len(before)
	}
	return evolved, nil
}

// configTypes reads a configured table's .proto files and registers them
// (a table that exists gets a new version when its file changed), filling
// in the definition's message types.
func (s *Server) configTypes(ctx context.Context, ct config.Table, def catalog.Table) (catalog.Table, error) {
	read := func(file, message string) (*wailv1.TypeSchema, error) {
		if file == "" {
			return nil, nil
		}
		b, err := os.ReadFile(file)
		if err != nil {
			return nil, err
		}
		return &wailv1.TypeSchema{Schema: string(b), Message: message}, nil
	}
	key, err := read(ct.KeyProto, ct.KeyMessage)
	if err != nil {
		return def, fmt.Errorf("key_proto: %w", err)
	}
	value, err := read(ct.ValueProto, ct.ValueMessage)
	if err != nil {
		return def, fmt.Errorf("value_proto: %w", err)
	}
	if key == nil && value == nil {
		return def, nil
	}
	_, exists, err := s.tableNow(ctx, ct.Name)
	if err != nil {
		return def, err
	}
	if exists {
		if _, err := s.evolveTypes(ctx, ct.Name, key, value); err != nil {
			return def, err
		}
	}
	def.KeyMessage, def.ValueMessage, err = s.createTypes(ctx, ct.Name, key, value)
	return def, err
}

// JSON implements proxy.Printer: the value printed with the latest schema
// of the table's value subject. Fields that schema no longer has (a row
// written before a field was removed) are left out rather than refused.
func (v *typedValues) JSON(ctx context.Context, t catalog.Table, value []byte) ([]byte, error) {
	c, err := v.message(ctx, t.Name, partValue, t.ValueMessage)
	if err != nil {
		return nil, err
	}
	j, err := c.msg.Print(value)
	if err != nil {
		return nil, fmt.Errorf("%w: the stored value of %s (written with validation off?): %w; read it without JSON", proxy.ErrInvalid, t.Name, err)
	}
	return j, nil
}

// tableProto is a table's API form with its subjects.
func (s *Server) tableProto(t catalog.Table) *wailv1.Table {
	p := t.Proto()
	if t.KeyMessage != "" {
		p.KeySubject = s.subject(t.Name, partKey)
	}
	if t.ValueMessage != "" {
		p.ValueSubject = s.subject(t.Name, partValue)
	}
	return p
}
