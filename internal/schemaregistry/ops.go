package schemaregistry

import (
	"context"
	"encoding/hex"
	"fmt"
	"math"
	"net/http"
	"slices"
	"sort"
	"strings"

	"github.com/wail-cdc/wail/internal/schema"
)

// Protobuf is the only schema type this registry holds.
const Protobuf = "PROTOBUF"

// SchemaRequest is a schema as clients send it to register, look up or
// check. ID and Version are only for IMPORT mode.
type SchemaRequest struct {
	Schema     string      `json:"schema"`
	SchemaType string      `json:"schemaType,omitempty"`
	References []Reference `json:"references,omitempty"`
	ID         int         `json:"id,omitempty"`
	Version    int         `json:"version,omitempty"`
	// Normalize compares the schema with those stored once both are
	// normalized (the normalize=true query parameter; see
	// schema.Schema.NormalizedFingerprint). The text is kept as sent.
	Normalize bool `json:"-"`
}

// SubjectSchema is a subject's version as the API returns it.
type SubjectSchema struct {
	Subject    string      `json:"subject"`
	Version    int         `json:"version"`
	ID         int         `json:"id"`
	SchemaType string      `json:"schemaType"`
	Schema     string      `json:"schema"`
	References []Reference `json:"references,omitempty"`
}

func (req *SchemaRequest) validate() *Error {
	if req.SchemaType != Protobuf {
		t := req.SchemaType
		if t == "" {
			t = "AVRO (no schemaType)"
		}
		return invalidSchema("wail's registry holds Protobuf schemas; this one is %s: set \"schemaType\": \"PROTOBUF\"", t)
	}
	if strings.TrimSpace(req.Schema) == "" {
		return invalidSchema("the schema is empty")
	}
	// Ids and versions are 32-bit in the API and the wire format (a
	// record carries its schema id in 4 bytes).
	if req.ID > math.MaxInt32 {
		return invalidSchema("schema id %d is out of range: ids are 1 to %d", req.ID, math.MaxInt32)
	}
	if req.Version > math.MaxInt32 {
		return errf(http.StatusUnprocessableEntity, CodeInvalidVersion, "Version %d is out of range: versions are 1 to %d", req.Version, math.MaxInt32)
	}
	return nil
}

// resolveRefs pins references to "latest" (-1) to the version that is
// latest now.
func resolveRefs(st *state, refs []Reference) ([]Reference, *Error) {
	out := make([]Reference, len(refs))
	for i, ref := range refs {
		if ref.Name == "" || ref.Subject == "" {
			return nil, invalidSchema("reference %d needs a name (the import path) and a subject", i)
		}
		v, e := st.version(ref.Subject, ref.Version, false)
		if e != nil {
			return nil, invalidSchema("reference %q (subject %q version %d): %s", ref.Name, ref.Subject, ref.Version, e.Message)
		}
		out[i] = Reference{Name: ref.Name, Subject: ref.Subject, Version: v.Version}
	}
	return out, nil
}

// matches reports whether a stored schema is the one asked for: the same
// meaning (fingerprint) or the same text and references.
func (rec *schemaRec) matches(fp, text string, refs []Reference) bool {
	return rec.Fingerprint == fp || (rec.Text == text && slices.Equal(rec.Refs, refs))
}

// candidate is a schema asked for, to find among those stored.
type candidate struct {
	fp, text string
	refs     []Reference
	// normalized is its normalized fingerprint, when the request asked
	// to normalize ("": compare as sent).
	normalized string
}

func newCandidate(s *schema.Schema, req SchemaRequest, refs []Reference) candidate {
	c := candidate{fp: fingerprint(s), text: req.Schema, refs: refs}
	if req.Normalize {
		n := s.NormalizedFingerprint()
		c.normalized = hex.EncodeToString(n[:])
	}
	return c
}

// is reports whether the schema stored as id is c: the same as sent or,
// normalizing, the same once both are normalized (the stored one
// compiled, and cached, for that).
func (r *Registry) is(ctx context.Context, st *state, id int, c candidate) (bool, error) {
	if st.Schemas[id].matches(c.fp, c.text, c.refs) {
		return true, nil
	}
	if c.normalized == "" {
		return false, nil
	}
	s, err := r.compiledByID(ctx, st, id)
	if err != nil {
		return false, err
	}
	n := s.NormalizedFingerprint()
	return hex.EncodeToString(n[:]) == c.normalized, nil
}

// previous are the live versions of a subject, oldest first, compiled.
func (r *Registry) previous(ctx context.Context, st *state, subject string) ([]schema.Version, error) {
	var out []schema.Version
	for _, v := range st.Subjects[subject].live(false) {
		s, err := r.compiledByID(ctx, st, v.ID)
		if err != nil {
			return nil, err
		}
		out = append(out, schema.Version{Version: v.Version, Schema: s, Text: st.Schemas[v.ID].Text})
	}
	return out, nil
}

// checkAgainst runs level on candidate against olds, adding the level to
// a refusal as the Confluent registry does.
func checkAgainst(level schema.Level, candidate *schema.Schema, olds []schema.Version) []string {
	msgs := schema.Check(level, candidate, olds)
	if len(msgs) > 0 {
		msgs = append(msgs, fmt.Sprintf("{validateFields: 'false', compatibility: '%s'}", level))
	}
	return msgs
}

// Register registers a schema under subject and returns its id: the id it
// already has when the subject (or another) holds the same schema, else a
// new one. It refuses a schema the subject's compatibility level does not
// allow (409) and writes in READONLY mode (42205).
func (r *Registry) Register(ctx context.Context, subject string, req SchemaRequest) (int, error) {
	if e := validSubject(subject); e != nil {
		return 0, e
	}
	if e := req.validate(); e != nil {
		return 0, e
	}
	var id int
	err := r.update(ctx, func(st *state) (bool, error) {
		mode := st.mode(subject)
		switch {
		case mode == ReadOnly || mode == ReadOnlyOverride:
			return false, notPermitted("Subject %s is in read-only mode", subject)
		case req.ID > 0 && mode != Import:
			return false, notPermitted("Subject %s is not in import mode: a schema id can only be given in IMPORT mode", subject)
		case req.ID <= 0 && mode == Import:
			// As Confluent's: an import names each schema's id; one
			// without would take a new id unchecked, maybe one the
			// import has still to give.
			return false, notPermitted("Subject %s is not in read-write mode: in IMPORT mode a schema needs its id", subject)
		}
		refs, e := resolveRefs(st, req.References)
		if e != nil {
			return false, e
		}
		s, err := r.compile(ctx, st, req.Schema, refs, false)
		if err != nil {
			return false, err
		}
		nreq := req
		nreq.Normalize = req.Normalize || st.normalizes(subject)
		c := newCandidate(s, nreq, refs)
		fp := c.fp
		sub := st.Subjects[subject]
		// A version given outside IMPORT mode must be the next one, and
		// is registered as asked even when the subject holds the schema
		// (as Confluent's register, where only an id needs IMPORT mode).
		named := req.Version > 0 && mode != Import
		if named && req.Version != sub.next() {
			return false, invalidSchema("Version %d is not one more than the previous version: the next version of subject %s is %d", req.Version, subject, sub.next())
		}
		for _, v := range sub.live(false) {
			if named {
				break
			}
			same, err := r.is(ctx, st, v.ID, c)
			if err != nil {
				return false, err
			}
			if same && (req.ID <= 0 || req.ID == v.ID) {
				id = v.ID
				return false, nil // registered already
			}
		}
		if mode != Import {
			olds, err := r.previous(ctx, st, subject)
			if err != nil {
				return false, err
			}
			if msgs := checkAgainst(st.compat(subject), s, olds); len(msgs) > 0 {
				return false, errf(http.StatusConflict, CodeIncompatible,
					"Schema being registered is incompatible with an earlier schema for subject \"%s\", details: [%s]", subject, strings.Join(msgs, ", "))
			}
		}
		id = 0
		if req.ID > 0 {
			if rec := st.Schemas[req.ID]; rec != nil && !rec.matches(fp, req.Schema, refs) {
				return false, errf(http.StatusUnprocessableEntity, CodeIDMismatch,
					"Schema id %d is taken by another schema; the id given must be free or hold this schema", req.ID)
			}
			id = req.ID
		} else {
			for _, sid := range sortedIDs(st) {
				same, err := r.is(ctx, st, sid, c)
				if err != nil {
					return false, err
				}
				if same {
					id = sid
					break
				}
			}
		}
		if id == 0 {
			id = st.NextID
			if id > math.MaxInt32 {
				// An id imported at the top of the range took the last
				// one: clients read ids as signed 32-bit.
				return false, errf(http.StatusUnprocessableEntity, CodeInvalidSchema,
					"no schema id is left: ids are 1 to %d and an imported one took the last; register it in another registry", math.MaxInt32)
			}
		}
		if st.Schemas[id] == nil {
			st.Schemas[id] = &schemaRec{Text: req.Schema, Refs: refs, Fingerprint: fp}
		}
		if id >= st.NextID {
			st.NextID = id + 1
		}
		if sub == nil {
			sub = &subjectRec{}
			st.Subjects[subject] = sub
		}
		version := sub.next()
		if req.Version > 0 {
			if _, _, taken := sub.find(req.Version); taken || req.Version < version {
				return false, errf(http.StatusUnprocessableEntity, CodeInvalidVersion,
					"Version %d of subject %s cannot be imported: versions must be new and increasing (next is %d or more)", req.Version, subject, version)
			}
			version = req.Version
		}
		// As Confluent's register: the subject's soft-deleted versions of
		// this id go for good (one version per id and subject), unless a
		// schema imports them.
		sub.Versions = slices.DeleteFunc(sub.Versions, func(v versionRec) bool {
			return v.Deleted && v.ID == id && v.Version < version && len(st.referencedBy(subject, v.Version)) == 0
		})
		sub.Versions = append(sub.Versions, versionRec{Version: version, ID: id})
		return true, nil
	})
	r.changed(subject, err)
	return id, err
}

func sortedIDs(st *state) []int {
	ids := make([]int, 0, len(st.Schemas))
	for id := range st.Schemas {
		ids = append(ids, id)
	}
	sort.Ints(ids)
	return ids
}

// Lookup finds the version of subject that holds a schema (40403 when
// none does).
func (r *Registry) Lookup(ctx context.Context, subject string, req SchemaRequest, deleted bool) (SubjectSchema, error) {
	if e := req.validate(); e != nil {
		return SubjectSchema{}, e
	}
	st, err := r.read(ctx)
	if err != nil {
		return SubjectSchema{}, err
	}
	sub, e := st.subject(subject, deleted)
	if e != nil {
		return SubjectSchema{}, e
	}
	refs, e := resolveRefs(st, req.References)
	if e != nil {
		return SubjectSchema{}, e
	}
	s, err := r.compile(ctx, st, req.Schema, refs, false)
	if err != nil {
		return SubjectSchema{}, err
	}
	req.Normalize = req.Normalize || st.normalizes(subject)
	c := newCandidate(s, req, refs)
	live := sub.live(deleted)
	for i := len(live) - 1; i >= 0; i-- {
		same, err := r.is(ctx, st, live[i].ID, c)
		if err != nil {
			return SubjectSchema{}, err
		}
		if same {
			return st.subjectSchema(subject, live[i]), nil
		}
	}
	return SubjectSchema{}, errf(http.StatusNotFound, CodeSchemaNotFound, "Schema not found")
}

func (st *state) subjectSchema(subject string, v versionRec) SubjectSchema {
	rec := st.Schemas[v.ID]
	return SubjectSchema{Subject: subject, Version: v.Version, ID: v.ID, SchemaType: Protobuf, Schema: rec.Text, References: rec.Refs}
}

// Version returns a subject's version (latest: -1).
func (r *Registry) Version(ctx context.Context, subject string, version int, deleted bool) (SubjectSchema, error) {
	st, err := r.read(ctx)
	if err != nil {
		return SubjectSchema{}, err
	}
	v, e := st.version(subject, version, deleted)
	if e != nil {
		return SubjectSchema{}, e
	}
	return st.subjectSchema(subject, v), nil
}

// SchemaByID returns a schema by id, with no subject or version.
func (r *Registry) SchemaByID(ctx context.Context, id int) (SubjectSchema, error) {
	st, err := r.read(ctx)
	if err != nil {
		return SubjectSchema{}, err
	}
	rec := st.Schemas[id]
	if rec == nil {
		return SubjectSchema{}, schemaNotFound(id)
	}
	return SubjectSchema{ID: id, SchemaType: Protobuf, Schema: rec.Text, References: rec.Refs}, nil
}

// Usages lists the subject versions that hold a schema id.
func (r *Registry) Usages(ctx context.Context, id int, deleted bool) ([]subjectVersion, error) {
	st, err := r.read(ctx)
	if err != nil {
		return nil, err
	}
	if st.Schemas[id] == nil {
		return nil, schemaNotFound(id)
	}
	out := st.usages(id, deleted)
	if out == nil {
		out = []subjectVersion{}
	}
	return out, nil
}

// ReferencedBy lists the ids of the schemas importing a subject's version,
// soft-deleted or not (as Confluent's getReferencedBy, which reads the
// version with deleted=true): the ids a live version uses, or every one
// with deleted.
func (r *Registry) ReferencedBy(ctx context.Context, subject string, version int, deleted bool) ([]int, error) {
	st, err := r.read(ctx)
	if err != nil {
		return nil, err
	}
	v, e := st.version(subject, version, true)
	if e != nil {
		return nil, e
	}
	var out []int
	if deleted {
		out = st.referencedBy(subject, v.Version)
	} else {
		out = referencedByLive(st, subject, v.Version)
	}
	if out == nil {
		out = []int{}
	}
	return out, nil
}

// Check tests a schema against a subject without registering it: against
// one version, or (all) against what the subject's level checks on
// registration. It returns the reasons it is incompatible; none: it is.
func (r *Registry) Check(ctx context.Context, subject string, version int, all bool, req SchemaRequest) ([]string, error) {
	if !all && version != latest {
		// As Confluent's: the version is looked up before the schema is
		// read, so a missing one is 40402 whatever the schema.
		st, err := r.read(ctx)
		if err != nil {
			return nil, err
		}
		if _, e := checkedVersion(st, subject, version); e != nil {
			return nil, e
		}
	}
	st, s, err := r.compileRequest(ctx, req)
	if err != nil {
		return nil, err
	}
	olds, err := r.previous(ctx, st, subject)
	if err != nil {
		return nil, err
	}
	level := st.compat(subject)
	if !all {
		if len(olds) == 0 && version == latest {
			return nil, nil // nothing to be incompatible with
		}
		v, e := checkedVersion(st, subject, version)
		if e != nil {
			return nil, e
		}
		var one []schema.Version
		for _, o := range olds {
			if o.Version == v.Version {
				one = append(one, o)
			}
		}
		olds = one
	}
	return checkAgainst(level, s, olds), nil
}

// checkedVersion is the live version a compatibility check is against.
// Confluent's check looks the version up alone: a subject without it
// lacks the version, 40402.
func checkedVersion(st *state, subject string, version int) (versionRec, *Error) {
	v, e := st.version(subject, version, false)
	if e != nil && e.Code == CodeSubjectNotFound {
		e = versionNotFound(version)
	}
	return v, e
}

// DeleteSubject soft-deletes a subject's versions, or permanently removes
// a soft-deleted subject; it returns the versions deleted.
func (r *Registry) DeleteSubject(ctx context.Context, subject string, permanent bool) ([]int, error) {
	var deleted []int
	err := r.cleanup(ctx, func(st *state) (bool, error) {
		deleted = deleted[:0]
		sub := st.Subjects[subject]
		if len(sub.live(true)) == 0 {
			return false, subjectNotFound(subject)
		}
		if m := st.mode(subject); m == ReadOnly || m == ReadOnlyOverride {
			return false, notPermitted("Subject %s is in read-only mode", subject)
		}
		live := sub.live(false)
		if permanent {
			if len(live) > 0 {
				return false, errf(http.StatusNotFound, CodeSubjectNotSoftDeleted,
					"Subject '%s' was not deleted first before being permanently deleted", subject)
			}
			for _, v := range sub.Versions {
				if ids := referencedFromOthers(st, subject, v.Version, true); len(ids) > 0 {
					return false, errf(http.StatusUnprocessableEntity, CodeReferenceExists,
						"One or more references exist to the schema {subject=%s, version=%d}: schema ids %v import it", subject, v.Version, ids)
				}
				deleted = append(deleted, v.Version)
			}
			delete(st.Subjects, subject)
			st.dropUnused()
			return true, nil
		}
		if len(live) == 0 {
			return false, errf(http.StatusNotFound, CodeSubjectSoftDeleted,
				"Subject '%s' was soft deleted. Set permanent=true to delete permanently", subject)
		}
		for _, v := range live {
			if ids := referencedFromOthers(st, subject, v.Version, false); len(ids) > 0 {
				return false, referenceExists(subject, v.Version, ids)
			}
		}
		for i := range sub.Versions {
			if !sub.Versions[i].Deleted {
				sub.Versions[i].Deleted = true
				deleted = append(deleted, sub.Versions[i].Version)
			}
		}
		return true, nil
	})
	r.changed(subject, err)
	return deleted, err
}

func referenceExists(subject string, version int, ids []int) *Error {
	return errf(http.StatusUnprocessableEntity, CodeReferenceExists,
		"One or more references exist to the schema {subject=%s, version=%d}: schema ids %v import it; delete those first", subject, version, ids)
}

// referencedFromOthers lists the schemas importing a subject's version
// that a version of another subject uses (live ones only, unless
// deleted): what keeps the whole subject from being deleted. The
// subject's own versions importing it go with it, as in Confluent's
// deleteSubject.
func referencedFromOthers(st *state, subject string, version int, deleted bool) []int {
	var out []int
	for _, id := range st.referencedBy(subject, version) {
		for _, u := range st.usages(id, deleted) {
			if u.Subject != subject {
				out = append(out, id)
				break
			}
		}
	}
	return out
}

// referencedByLive lists the schemas importing a version that some live
// version still uses.
func referencedByLive(st *state, subject string, version int) []int {
	var out []int
	for _, id := range st.referencedBy(subject, version) {
		if len(st.usages(id, false)) > 0 {
			out = append(out, id)
		}
	}
	return out
}

// DeleteVersion soft-deletes a version, or permanently removes a
// soft-deleted one; it returns the version number.
func (r *Registry) DeleteVersion(ctx context.Context, subject string, version int, permanent bool) (int, error) {
	var done int
	err := r.cleanup(ctx, func(st *state) (bool, error) {
		// Latest is the newest live version; with none, 40402 while the
		// subject has soft-deleted versions (Confluent's
		// validateDeleteSchemaVersion), 40401 once it has none.
		v, e := st.version(subject, version, true)
		if e != nil {
			return false, e
		}
		if m := st.mode(subject); m == ReadOnly || m == ReadOnlyOverride {
			return false, notPermitted("Subject %s is in read-only mode", subject)
		}
		sub := st.Subjects[subject]
		_, i, _ := sub.find(v.Version)
		done = v.Version
		if permanent {
			if !v.Deleted {
				return false, errf(http.StatusNotFound, CodeVersionNotSoftDeleted,
					"Subject '%s' Version %d was not deleted first before being permanently deleted", subject, v.Version)
			}
			if ids := st.referencedBy(subject, v.Version); len(ids) > 0 {
				return false, referenceExists(subject, v.Version, ids)
			}
			sub.Versions = append(sub.Versions[:i], sub.Versions[i+1:]...)
			if len(sub.Versions) == 0 {
				delete(st.Subjects, subject)
			}
			st.dropUnused()
			return true, nil
		}
		if v.Deleted {
			return false, errf(http.StatusNotFound, CodeVersionSoftDeleted,
				"Subject '%s' Version %d was soft deleted. Set permanent=true to delete permanently", subject, v.Version)
		}
		if ids := referencedByLive(st, subject, v.Version); len(ids) > 0 {
			return false, referenceExists(subject, v.Version, ids)
		}
		sub.Versions[i].Deleted = true
		return true, nil
	})
	r.changed(subject, err)
	return done, err
}

// Compatibility returns the level of subject ("": global): see Config
// ("" for a subject whose own config sets only normalize).
func (r *Registry) Compatibility(ctx context.Context, subject string, defaultToGlobal bool) (schema.Level, error) {
	c, err := r.Config(ctx, subject, defaultToGlobal)
	return schema.Level(c.Compatibility), err
}

// Config is a subject's or the global config as Confluent's PUT /config
// takes it: a compatibility level, and whether register and lookup
// normalize a schema sent without ?normalize=true. In an update an unset
// field is left as it is.
type Config struct {
	Compatibility string `json:"compatibility,omitempty"`
	Normalize     *bool  `json:"normalize,omitempty"`
}

// Config returns the config of subject ("": global). A subject with no
// config of its own gives 40408, unless defaultToGlobal: then, as
// Confluent's getConfigInScope, each setting is the subject's or else the
// global one (the level BACKWARD when none is set).
func (r *Registry) Config(ctx context.Context, subject string, defaultToGlobal bool) (Config, error) {
	st, err := r.read(ctx)
	if err != nil {
		return Config{}, err
	}
	if subject != "" && !defaultToGlobal {
		s := st.Subjects[subject]
		if s == nil || (s.Compat == "" && s.Normalize == nil) {
			return Config{}, errf(http.StatusNotFound, CodeSubjectCompatNotConfigured,
				"Subject '%s' does not have subject-level compatibility configured", subject)
		}
		return Config{Compatibility: s.Compat, Normalize: s.Normalize}, nil
	}
	return Config{Compatibility: string(st.compat(subject)), Normalize: st.normalize(subject)}, nil
}

// SetCompatibility sets the level of subject ("": global); reset ("")
// removes a subject's own config (40401 when it has none, as Confluent's),
// or sets the global one back to BACKWARD without normalize. It returns
// the level it replaced.
func (r *Registry) SetCompatibility(ctx context.Context, subject, level string) (schema.Level, error) {
	return r.SetConfig(ctx, subject, Config{Compatibility: level})
}

// SetConfig updates the config of subject ("": global) with the fields c
// sets; an empty c resets it (see SetCompatibility). It returns the level
// it replaced.
func (r *Registry) SetConfig(ctx context.Context, subject string, c Config) (schema.Level, error) {
	var l schema.Level
	if c.Compatibility != "" {
		var err error
		if l, err = schema.ParseLevel(c.Compatibility); err != nil {
			return "", errf(http.StatusUnprocessableEntity, CodeInvalidCompatibility,
				"Invalid compatibility level. Valid values are none, backward, forward, full, backward_transitive, forward_transitive, and full_transitive")
		}
	}
	reset := l == "" && c.Normalize == nil
	if subject != "" {
		if e := validSubject(subject); e != nil {
			return "", e
		}
	}
	var prev schema.Level
	err := r.update(ctx, func(st *state) (bool, error) {
		prev = st.compat(subject)
		if subject == "" {
			setScope(&st.Compat, &st.Normalize, reset, l, c.Normalize)
			return true, nil
		}
		sub := st.Subjects[subject]
		if reset && (sub == nil || (sub.Compat == "" && sub.Normalize == nil)) {
			// Nothing to delete: Confluent's deleteSubjectConfig answers 40401.
			return false, subjectNotFound(subject)
		}
		if sub == nil {
			sub = &subjectRec{}
			st.Subjects[subject] = sub
		}
		setScope(&sub.Compat, &sub.Normalize, reset, l, c.Normalize)
		st.gc(subject)
		return true, nil
	})
	return prev, err
}

// setScope applies a config change to one scope's (global or a subject's)
// level and normalize: reset clears both first, then what is given is set.
func setScope(compat *string, normalize **bool, reset bool, l schema.Level, n *bool) {
	if reset {
		*compat, *normalize = "", nil
	}
	if l != "" {
		*compat = string(l)
	}
	if n != nil {
		*normalize = n
	}
}

// gc forgets a subject that holds neither versions nor settings.
func (st *state) gc(subject string) {
	if s := st.Subjects[subject]; s != nil && len(s.Versions) == 0 && s.Compat == "" && s.Mode == "" && s.Normalize == nil {
		delete(st.Subjects, subject)
	}
}

// Mode returns the mode of subject ("": global); see Compatibility.
func (r *Registry) Mode(ctx context.Context, subject string, defaultToGlobal bool) (string, error) {
	st, err := r.read(ctx)
	if err != nil {
		return "", err
	}
	if subject != "" && !defaultToGlobal {
		if s := st.Subjects[subject]; s == nil || s.Mode == "" {
			return "", errf(http.StatusNotFound, CodeSubjectModeNotConfigured,
				"Subject '%s' does not have subject-level mode configured", subject)
		}
	}
	return st.mode(subject), nil
}

// SetMode sets the mode of subject ("": global), or resets it (mode "";
// 40401 for a subject without a mode of its own, as Confluent's): IMPORT
// only on an empty registry or subject unless force. It returns the mode
// it replaced.
func (r *Registry) SetMode(ctx context.Context, subject, mode string, force bool) (string, error) {
	if mode != "" {
		m := strings.ToUpper(mode)
		ok := false
		for _, valid := range modes {
			ok = ok || m == valid
		}
		if !ok {
			return "", errf(http.StatusUnprocessableEntity, CodeInvalidMode,
				"Invalid mode. Valid values are READWRITE, READONLY, READONLY_OVERRIDE, IMPORT")
		}
		mode = m
	}
	if subject != "" {
		if e := validSubject(subject); e != nil {
			return "", e
		}
	}
	var prev string
	err := r.update(ctx, func(st *state) (bool, error) {
		prev = st.mode(subject)
		if mode == Import && !force {
			for name, s := range st.Subjects {
				if (subject == "" || name == subject) && len(s.Versions) > 0 {
					return false, notPermitted("Cannot import since found existing subjects: set force=true to import anyway")
				}
			}
		}
		if subject == "" {
			st.Mode = mode
			return true, nil
		}
		sub := st.Subjects[subject]
		if mode == "" && (sub == nil || sub.Mode == "") {
			// Nothing to delete: Confluent's deleteSubjectMode answers 40401.
			return false, subjectNotFound(subject)
		}
		if sub == nil {
			sub = &subjectRec{}
			st.Subjects[subject] = sub
		}
		sub.Mode = mode
		st.gc(subject)
		return true, nil
	})
	return prev, err
}
