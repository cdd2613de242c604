package schemaregistry

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/wail-cdc/wail/internal/schema"
)

// Reference is an import of a schema resolved to a subject's version:
// Name is the path the schema imports ("shop/money.proto").
type Reference struct {
	Name    string `json:"name"`
	Subject string `json:"subject"`
	Version int    `json:"version"`
}

// Modes.
const (
	ReadWrite        = "READWRITE"
	ReadOnly         = "READONLY"
	ReadOnlyOverride = "READONLY_OVERRIDE"
	Import           = "IMPORT"
)

var modes = []string{ReadWrite, ReadOnly, ReadOnlyOverride, Import}

// schemaRec is a schema by id: immutable once saved.
type schemaRec struct {
	Text string      `json:"schema"`
	Refs []Reference `json:"references,omitempty"`
	// Fingerprint is schema.Schema.Fingerprint in hex: equal for texts
	// that mean the same.
	Fingerprint string `json:"fingerprint"`
}

type versionRec struct {
	Version int  `json:"version"`
	ID      int  `json:"id"`
	Deleted bool `json:"deleted,omitempty"` // soft-deleted
}

type subjectRec struct {
	Versions []versionRec `json:"versions"`
	Compat   string       `json:"compatibility,omitempty"` // "": the global level
	Mode     string       `json:"mode,omitempty"`          // "": the global mode
	// Normalize: register and lookup normalize (nil: as the global config).
	Normalize *bool `json:"normalize,omitempty"`
}

// state is the registry's document.
type state struct {
	// NextID is the id the next new schema gets: ids are never reused,
	// even after a hard delete.
	NextID   int                    `json:"next_id"`
	Schemas  map[int]*schemaRec     `json:"schemas"`
	Subjects map[string]*subjectRec `json:"subjects"`
	Compat   string                 `json:"compatibility,omitempty"` // "": BACKWARD
	Mode     string                 `json:"mode,omitempty"`          // "": READWRITE
	// Normalize: register and lookup normalize (nil: they do not).
	Normalize *bool `json:"normalize,omitempty"`
}

func decodeState(b []byte) (*state, error) {
	st := &state{}
	if len(b) > 0 {
		if err := json.Unmarshal(b, st); err != nil {
			return nil, fmt.Errorf("schema registry: the stored document does not decode: %w", err)
		}
	}
	if st.NextID < 1 {
		st.NextID = 1
	}
	if st.Schemas == nil {
		st.Schemas = map[int]*schemaRec{}
	}
	if st.Subjects == nil {
		st.Subjects = map[string]*subjectRec{}
	}
	if err := st.check(); err != nil {
		return nil, fmt.Errorf("schema registry: the stored document is damaged: %w", err)
	}
	return st, nil
}

// check refuses a document no registry writes, which every operation
// would trip on: a null schema or subject, a version naming a schema the
// document lacks, versions out of order, or a next id already taken (a new
// schema would get the id of another). The document is shared through the
// store: another process, or a hand edit, may have written it.
func (st *state) check() error {
	for id, rec := range st.Schemas {
		switch {
		case rec == nil:
			return fmt.Errorf("schema id %d is null", id)
		case id < 1 || id >= st.NextID:
			return fmt.Errorf("schema id %d is outside 1..next_id-1 (next_id %d)", id, st.NextID)
		}
	}
	for name, sub := range st.Subjects {
		if sub == nil {
			return fmt.Errorf("subject %q is null", name)
		}
		prev := 0
		for _, v := range sub.Versions {
			if v.Version <= prev {
				return fmt.Errorf("subject %q: version %d after version %d", name, v.Version, prev)
			}
			if st.Schemas[v.ID] == nil {
				return fmt.Errorf("subject %q version %d: schema id %d is missing", name, v.Version, v.ID)
			}
			prev = v.Version
		}
	}
	return nil
}

func (st *state) encode() ([]byte, error) { return json.Marshal(st) }

func (st *state) compat(subject string) schema.Level {
	if s := st.Subjects[subject]; s != nil && s.Compat != "" {
		return schema.Level(s.Compat)
	}
	if st.Compat != "" {
		return schema.Level(st.Compat)
	}
	return schema.Backward
}

// normalize is the normalize setting in scope for subject: its own, else
// the global one (nil: none set).
func (st *state) normalize(subject string) *bool {
	if s := st.Subjects[subject]; s != nil && s.Normalize != nil {
		return s.Normalize
	}
	return st.Normalize
}

// normalizes reports whether register and lookup under subject normalize
// a schema sent without ?normalize=true, as Confluent's config says.
func (st *state) normalizes(subject string) bool {
	n := st.normalize(subject)
	return n != nil && *n
}

func (st *state) mode(subject string) string {
	if st.Mode == ReadOnlyOverride {
		return st.Mode // freezes every subject, whatever its own mode (as Confluent's getMode)
	}
	if s := st.Subjects[subject]; s != nil && s.Mode != "" {
		return s.Mode
	}
	if st.Mode != "" {
		return st.Mode
	}
	return ReadWrite
}

// live are the versions not soft-deleted (all of them with deleted).
// next is the number a new version of the subject takes: one more than
// the last, soft-deleted or not.
func (s *subjectRec) next() int {
	if s == nil || len(s.Versions) == 0 {
		return 1
	}
	return s.Versions[len(s.Versions)-1].Version + 1
}

func (s *subjectRec) live(deleted bool) []versionRec {
	if s == nil {
		return nil
	}
	var out []versionRec
	for _, v := range s.Versions {
		if deleted || !v.Deleted {
			out = append(out, v)
		}
	}
	return out
}

func (s *subjectRec) find(version int) (versionRec, int, bool) {
	if s == nil {
		return versionRec{}, -1, false
	}
	for i, v := range s.Versions {
		if v.Version == version {
			return v, i, true
		}
	}
	return versionRec{}, -1, false
}

// subject finds a subject with a version left (any, with deleted).
func (st *state) subject(name string, deleted bool) (*subjectRec, *Error) {
	s := st.Subjects[name]
	if len(s.live(deleted)) == 0 {
		return nil, subjectNotFound(name)
	}
	return s, nil
}

// latest is the subject's newest version: "latest" and -1 name it.
const latest = -1

// parseVersion reads a version path parameter as Confluent's VersionId
// does: spaces around it trimmed, "latest" in any case or -1, or a
// positive 32-bit number.
func parseVersion(s string) (int, *Error) {
	t := strings.TrimSpace(s)
	if strings.EqualFold(t, "latest") {
		return latest, nil
	}
	v, err := strconv.ParseInt(t, 10, 32)
	if err != nil || v == 0 || v < latest {
		return 0, errf(http.StatusUnprocessableEntity, CodeInvalidVersion,
			"The specified version '%s' is not a valid version id. Allowed values are between [1, 2^31-1] and the string \"latest\"", s)
	}
	return int(v), nil
}

// version finds a version of a subject. Latest is the newest version
// live, with deleted too (as Confluent's getLatestVersion): with every
// version soft-deleted, deleted finds the subject but not its latest.
func (st *state) version(subject string, version int, deleted bool) (versionRec, *Error) {
	s, e := st.subject(subject, deleted)
	if e != nil {
		return versionRec{}, e
	}
	if version == latest {
		live := s.live(false)
		if len(live) == 0 {
			return versionRec{}, versionNotFound(version)
		}
		return live[len(live)-1], nil
	}
	v, _, ok := s.find(version)
	if !ok || (v.Deleted && !deleted) {
		return versionRec{}, versionNotFound(version)
	}
	return v, nil
}

// referencedBy lists the ids of the schemas that import subject's version,
// through any version of any subject, deleted or not.
func (st *state) referencedBy(subject string, version int) []int {
	var ids []int
	for id, rec := range st.Schemas {
		for _, r := range rec.Refs {
			if r.Subject == subject && r.Version == version {
				ids = append(ids, id)
				break
			}
		}
	}
	sort.Ints(ids)
	return ids
}

// dropUnused forgets the schemas no version of any subject uses any more.
func (st *state) dropUnused() {
	used := map[int]bool{}
	for _, s := range st.Subjects {
		for _, v := range s.Versions {
			used[v.ID] = true
		}
	}
	for id := range st.Schemas {
		if !used[id] {
			delete(st.Schemas, id)
		}
	}
}

// usages lists the subject versions that use a schema id.
func (st *state) usages(id int, deleted bool) []subjectVersion {
	var out []subjectVersion
	for name, s := range st.Subjects {
		for _, v := range s.live(deleted) {
			if v.ID == id {
				out = append(out, subjectVersion{Subject: name, Version: v.Version})
			}
		}
	}
	slices.SortFunc(out, func(a, b subjectVersion) int {
		if c := strings.Compare(a.Subject, b.Subject); c != 0 {
			return c
		}
		return a.Version - b.Version
	})
	return out
}

type subjectVersion struct {
	Subject string `json:"subject"`
	Version int    `json:"version"`
}

// maxSubjectBytes bounds a subject name.
const maxSubjectBytes = 255

func validSubject(s string) *Error {
	bad := s == "" || len(s) > maxSubjectBytes || !utf8.ValidString(s) ||
		strings.IndexFunc(s, unicode.IsControl) >= 0 || strings.HasPrefix(s, "__")
	if bad {
		return errf(http.StatusUnprocessableEntity, CodeInvalidSubject,
			"Invalid subject %q: use 1-%d bytes of UTF-8 without control characters, not starting with '__'", s, maxSubjectBytes)
	}
	return nil
}
