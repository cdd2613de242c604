package schemaregistry

import (
	"cmp"
	"context"
	"slices"
	"sort"
	"strings"
)

// lookup picks versions by their soft-delete mark: Confluent's
// LookupFilter (the deleted, deletedOnly and deletedAsNegative parameters).
type lookup int

const (
	liveOnly     lookup = iota // versions not soft-deleted
	withDeleted                // every version
	deletedOnly                // soft-deleted versions only
	deletedAsNeg               // every version, soft-deleted ones as their negative
)

// includes reports whether the filter keeps a version, or a subject whose
// versions are all deleted or not.
func (f lookup) includes(deleted bool) bool {
	switch f {
	case liveOnly:
		return !deleted
	case deletedOnly:
		return deleted
	}
	return true
}

// Subjects lists the subjects with a live version (any version, with
// deleted), starting with prefix.
func (r *Registry) Subjects(ctx context.Context, prefix string, deleted bool) ([]string, error) {
	f := liveOnly
	if deleted {
		f = withDeleted
	}
	return r.subjects(ctx, prefix, f)
}

// subjects lists the subjects starting with prefix that f keeps: a
// subject is deleted when every version of it is (Confluent's
// extractUniqueSubjects).
func (r *Registry) subjects(ctx context.Context, prefix string, f lookup) ([]string, error) {
	st, err := r.read(ctx)
	if err != nil {
		return nil, err
	}
	out := []string{}
	for name, s := range st.Subjects {
		if strings.HasPrefix(name, prefix) && len(s.Versions) > 0 && f.includes(len(s.live(false)) == 0) {
			out = append(out, name)
		}
	}
	sort.Strings(out)
	return out, nil
}

// Versions lists a subject's version numbers.
func (r *Registry) Versions(ctx context.Context, subject string, deleted bool) ([]int, error) {
	f := liveOnly
	if deleted {
		f = withDeleted
	}
	return r.versions(ctx, subject, f)
}

// versions lists the version numbers of a subject that f keeps. The
// subject must have a live version, or any with deleted or deletedOnly
// (Confluent's listVersions).
func (r *Registry) versions(ctx context.Context, subject string, f lookup) ([]int, error) {
	st, err := r.read(ctx)
	if err != nil {
		return nil, err
	}
	sub, e := st.subject(subject, f == withDeleted || f == deletedOnly)
	if e != nil {
		return nil, e
	}
	out := []int{}
	for _, v := range sub.Versions {
		switch {
		case !f.includes(v.Deleted):
		case f == deletedAsNeg && v.Deleted:
			out = append(out, -v.Version)
		default:
			out = append(out, v.Version)
		}
	}
	return out, nil
}

// Schemas lists the versions of the subjects starting with prefix, by
// subject then version (Confluent's GET /schemas): live ones, or every
// one with deleted; with latestOnly, each subject's newest of those.
func (r *Registry) Schemas(ctx context.Context, prefix string, deleted, latestOnly bool) ([]SubjectSchema, error) {
	st, err := r.read(ctx)
	if err != nil {
		return nil, err
	}
	f := liveOnly
	if deleted {
		f = withDeleted
	}
	out := []SubjectSchema{}
	for name, s := range st.Subjects {
		if !strings.HasPrefix(name, prefix) {
			continue
		}
		var kept []versionRec
		for _, v := range s.Versions {
			if f.includes(v.Deleted) {
				kept = append(kept, v)
			}
		}
		slices.SortFunc(kept, func(a, b versionRec) int { return cmp.Compare(a.Version, b.Version) })
		if latestOnly && len(kept) > 0 {
			kept = kept[len(kept)-1:]
		}
		for _, v := range kept {
			out = append(out, st.subjectSchema(name, v))
		}
	}
	slices.SortFunc(out, func(a, b SubjectSchema) int {
		return cmp.Or(strings.Compare(a.Subject, b.Subject), cmp.Compare(a.Version, b.Version))
	})
	return out, nil
}
