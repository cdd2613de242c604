package server

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"testing"
	"text/template"
	"unicode"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/promql/parser"
	"gopkg.in/yaml.v3"

	"github.com/wail-cdc/wail/internal/servicetest"
)

const (
	alertsPath = "../../deploy/prometheus/wail-alerts.yml"
	// runbookBase is where every alert's runbook_url points: a heading of
	// docs/operations.md follows the #.
	runbookBase = "https://github.com/wail-cdc/wail/blob/main/docs/operations.md#"
)

// ruleFile is Prometheus's rules file format (rulefmt), read strictly:
// a key it does not know is an error.
type ruleFile struct {
	Groups []struct {
		Name     string `yaml:"name"`
		Interval string `yaml:"interval"`
		Limit    int    `yaml:"limit"`
		Rules    []rule `yaml:"rules"`
	} `yaml:"groups"`
}

type rule struct {
	Record        string            `yaml:"record"`
	Alert         string            `yaml:"alert"`
	Expr          string            `yaml:"expr"`
	For           string            `yaml:"for"`
	KeepFiringFor string            `yaml:"keep_firing_for"`
	Labels        map[string]string `yaml:"labels"`
	Annotations   map[string]string `yaml:"annotations"`
}

// TestAlertRules: deploy/prometheus/wail-alerts.yml is a rules file
// whose alerts query metrics wail registers and are documented in
// docs/operations.md, which links each to a heading of its own.
func TestAlertRules(t *testing.T) {
	ms := registeredMetrics(t, "wail_", "process_", "go_")
	rules, err := os.ReadFile(alertsPath)
	if err != nil {
		t.Fatal(err)
	}
	doc, err := os.ReadFile("../../docs/operations.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, err := range checkAlertRules(rules, string(doc), ms) {
		t.Error(err)
	}
}

// TestAlertRulesCheck: checkAlertRules finds each kind of mistake.
func TestAlertRulesCheck(t *testing.T) {
	ms := map[string]metricDesc{
		"wail_up":            {name: "wail_up"},
		"wail_lag":           {name: "wail_lag", labels: []string{"table", "partition"}},
		"wail_write_seconds": {name: "wail_write_seconds", labels: []string{"table"}, histogram: true},
	}
	const doc = "# Ops\n\n## Alerts\n\n```yaml prometheus\nrule_files:\n  - /etc/prometheus/wail-alerts.yml\n```\n\n" +
		"| alert | severity |\n|---|---|\n| `WailDown` | page |\n\n## The `wail lag` (of a table)\n"
	rule := func(alert, expr, severity, anchor, summary string) string {
		return fmt.Sprintf("groups:\n  - name: g\n    rules:\n      - alert: %s\n        expr: %s\n        for: 5m\n"+
			"        labels: {severity: %s}\n        annotations:\n          summary: %q\n          description: d\n"+
			"          runbook_url: %s%s\n", alert, expr, severity, summary, runbookBase, anchor)
	}
	for _, tc := range []struct {
		name, rules, doc, want string
	}{
		{"good", rule("WailDown", "wail_up == 0", "page", "alerts", "{{ $labels.instance }} is down"), doc, ""},
		{"histogram series, grouping, anchor of a heading with code",
			rule("WailDown", "histogram_quantile(0.99, sum by (le, table) (rate(wail_write_seconds_bucket[5m]))) > 1", "page",
				"the-wail-lag-of-a-table", "{{ $labels.table }} {{ $value | humanizeDuration }}"), doc, ""},
		{"not YAML", "groups: [", doc, "does not parse"},
		{"an unknown key", strings.Replace(rule("WailDown", "wail_up == 0", "page", "alerts", "s"), "for:", "fro:", 1), doc, "field fro not found"},
		{"not PromQL", rule("WailDown", "rate(wail_up[5m]", "page", "alerts", "s"), doc, "not PromQL"},
		{"an unknown metric", rule("WailDown", "wail_upp == 0", "page", "alerts", "s"), doc, "wail_upp, which wail does not register"},
		{"a prefix is no metric", rule("WailDown", "wail_ == 0", "page", "alerts", "s"), doc, "wail_, which wail does not register"},
		{"a gauge has no buckets", rule("WailDown", "wail_lag_bucket > 0", "page", "alerts", "s"), doc, "wail_lag_bucket, which wail does not register"},
		{"a label the metric lacks", rule("WailDown", `wail_lag{kind="x"} > 0`, "page", "alerts", "s"), doc, `matches on label "kind"`},
		{"grouping by a label the metric lacks", rule("WailDown", "sum by (group) (wail_lag) > 0", "page", "alerts", "s"), doc, `groups by "group"`},
		{"on a label one side lacks", rule("WailDown", "wail_lag and on (table) wail_up", "page", "alerts", "s"), doc, `matches on "table"`},
		{"an annotation of a label the result lacks", rule("WailDown", "sum by (table) (wail_lag) > 0", "page", "alerts", "{{ $labels.partition }}"), doc,
			`map has no entry for key "partition"`},
		{"an annotation that does not parse", rule("WailDown", "wail_up == 0", "page", "alerts", "{{ $labels.instance "), doc, "annotation summary"},
		{"a function Prometheus lacks", rule("WailDown", "wail_up == 0", "page", "alerts", "{{ $value | humanise }}"), doc, `function "humanise" not defined`},
		{"no such anchor", rule("WailDown", "wail_up == 0", "page", "alarms", "s"), doc, "a heading of docs/operations.md"},
		{"not in the docs", rule("WailGone", "wail_up == 0", "page", "alerts", "s"), doc, "WailGone is not named in docs/operations.md"},
		{"no row in the docs' table", rule("WailDown", "wail_up == 0", "page", "alerts", "s"),
			strings.Replace(doc, "| `WailDown` | page |", "`WailDown`", 1), "WailDown has no row in the alerts table"},
		{"the docs' severity differs", rule("WailDown", "wail_up == 0", "ticket", "alerts", "s"), doc, "docs/operations.md says page"},
		{"a severity of neither kind", rule("WailDown", "wail_up == 0", "urgent", "alerts", "s"), strings.Replace(doc, "| page |", "| urgent |", 1),
			`severity "urgent"`},
		{"the docs name an alert the file lacks", rule("WailDown", "wail_up == 0", "page", "alerts", "s"), doc + "\n`WailOther`\n",
			"WailOther, which the rules file does not have"},
		{"no rule_files snippet", rule("WailDown", "wail_up == 0", "page", "alerts", "s"), strings.Replace(doc, "wail-alerts.yml", "other.yml", 1),
			"prometheus.yml snippet"},
		{"a bad for", strings.Replace(rule("WailDown", "wail_up == 0", "page", "alerts", "s"), "for: 5m", "for: 5 minutes", 1), doc, `for "5 minutes"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			errs := errors.Join(checkAlertRules([]byte(tc.rules), tc.doc, ms)...)
			switch {
			case tc.want == "" && errs != nil:
				t.Fatalf("want no error, got %v", errs)
			case tc.want != "" && (errs == nil || !strings.Contains(errs.Error(), tc.want)):
				t.Fatalf("want an error with %q, got %v", tc.want, errs)
			}
		})
	}
}

// checkAlertRules says what is wrong with a rules file, against the
// metrics and docs/operations.md (doc).
func checkAlertRules(file []byte, doc string, ms map[string]metricDesc) []error {
	var f ruleFile
	dec := yaml.NewDecoder(bytes.NewReader(file))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil {
		return []error{fmt.Errorf("the rules file does not parse: %w", err)}
	}
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if len(f.Groups) == 0 {
		bad("the rules file has no groups")
	}
	anchors := headingAnchors(doc)
	severities := docSeverities(doc)
	seen := map[string]bool{}
	for _, g := range f.Groups {
		if g.Name == "" || seen["group "+g.Name] {
			bad("a group without a name, or named twice: %q", g.Name)
		}
		seen["group "+g.Name] = true
		for _, r := range g.Rules {
			if r.Alert == "" || r.Record != "" {
				bad("group %s: a rule that is no alert (record %q, expr %q)", g.Name, r.Record, r.Expr)
				continue
			}
			if seen[r.Alert] {
				bad("%s: two alerts of that name", r.Alert)
			}
			seen[r.Alert] = true
			for _, err := range checkAlert(r, ms, anchors) {
				bad("%s: %w", r.Alert, err)
			}
			switch sev, ok := severities[r.Alert]; {
			case !strings.Contains(doc, "`"+r.Alert+"`"):
				bad("%s is not named in docs/operations.md", r.Alert)
			case !ok:
				bad("%s has no row in the alerts table of docs/operations.md", r.Alert)
			case sev != r.Labels["severity"]:
				bad("%s: severity %s, docs/operations.md says %s", r.Alert, r.Labels["severity"], sev)
			}
		}
	}
	named := map[string]bool{}
	for _, m := range docAlertNames.FindAllStringSubmatch(doc, -1) {
		if !seen[m[1]] && !named[m[1]] {
			bad("docs/operations.md names %s, which the rules file does not have", m[1])
		}
		named[m[1]] = true
	}
	if !loadsAlerts(doc) {
		bad("docs/operations.md has no prometheus.yml snippet (```yaml prometheus) whose rule_files load wail-alerts.yml")
	}
	return errs
}

// checkAlert checks one alert's fields, expression and annotations.
func checkAlert(r rule, ms map[string]metricDesc, anchors map[string]bool) []error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if _, err := model.ParseDuration(r.For); err != nil {
		bad("for %q: %v", r.For, err)
	}
	if s := r.Labels["severity"]; s != "page" && s != "ticket" {
		bad("severity %q: page or ticket", s)
	}
	for _, a := range []string{"summary", "description", "runbook_url"} {
		if r.Annotations[a] == "" {
			bad("no annotation %s", a)
		}
	}
	if anchor, ok := strings.CutPrefix(r.Annotations["runbook_url"], runbookBase); !ok || !anchors[anchor] {
		bad("runbook_url %q is not %s and a heading of docs/operations.md", r.Annotations["runbook_url"], runbookBase)
	}
	expr, err := parser.NewParser(parser.Options{}).ParseExpr(r.Expr)
	if err != nil {
		bad("expr is not PromQL: %v", err)
		return errs
	}
	if expr.Type() != parser.ValueTypeVector {
		bad("expr is a %s, not an instant vector", expr.Type())
	}
	parser.Inspect(expr, func(n parser.Node, _ []parser.Node) error {
		switch n := n.(type) {
		case *parser.VectorSelector:
			if _, ok := seriesOf(n.Name, ms); !ok {
				bad("expr uses %s, which wail does not register (nor is it a series of a histogram wail registers)", n.Name)
				break
			}
			have := seriesLabels(n, ms)
			for _, m := range n.LabelMatchers {
				if m.Name != model.MetricNameLabel && !have[m.Name] {
					bad("expr matches on label %q, which %s lacks", m.Name, n.Name)
				}
			}
		case *parser.AggregateExpr:
			have := outLabels(n.Expr, ms)
			for _, l := range n.Grouping {
				if !have[l] {
					bad("expr groups by %q, which %s lacks", l, n.Expr)
				}
			}
		case *parser.BinaryExpr:
			if n.VectorMatching == nil {
				break
			}
			lhs, rhs := outLabels(n.LHS, ms), outLabels(n.RHS, ms)
			for _, l := range n.VectorMatching.MatchingLabels {
				if !lhs[l] || !rhs[l] {
					bad("expr matches on %q, which a side of %s lacks", l, n)
				}
			}
		}
		return nil
	})
	labels := map[string]string{}
	for l := range outLabels(expr, ms) {
		labels[l] = "x"
	}
	for _, a := range slices.Sorted(maps.Keys(r.Annotations)) {
		if err := expandAnnotation(r.Annotations[a], labels); err != nil {
			bad("annotation %s: %v", a, err)
		}
	}
	return errs
}

// targetLabels are the labels Prometheus adds to every scraped series.
var targetLabels = []string{"job", "instance"}

// seriesOf is the metric whose series name is: itself, or a histogram
// of which it is the _bucket, _count or _sum.
func seriesOf(name string, ms map[string]metricDesc) (metricDesc, bool) {
	if m, ok := ms[name]; ok {
		return m, true
	}
	for _, suffix := range []string{"_bucket", "_count", "_sum"} {
		if base, ok := strings.CutSuffix(name, suffix); ok && ms[base].histogram {
			return ms[base], true
		}
	}
	return metricDesc{}, false
}

// seriesLabels are the labels of the series a selector picks.
func seriesLabels(n *parser.VectorSelector, ms map[string]metricDesc) map[string]bool {
	m, _ := seriesOf(n.Name, ms)
	out := map[string]bool{}
	for _, l := range append(slices.Clone(targetLabels), m.labels...) {
		out[l] = true
	}
	if m.name != n.Name && strings.HasSuffix(n.Name, "_bucket") {
		out["le"] = true
	}
	return out
}

// outLabels are the labels every sample of e's result carries (the
// intersection where the sides of an or differ); none for a scalar.
func outLabels(e parser.Expr, ms map[string]metricDesc) map[string]bool {
	switch e := e.(type) {
	case *parser.VectorSelector:
		return seriesLabels(e, ms)
	case *parser.MatrixSelector:
		return outLabels(e.VectorSelector, ms)
	case *parser.SubqueryExpr:
		return outLabels(e.Expr, ms)
	case *parser.ParenExpr:
		return outLabels(e.Expr, ms)
	case *parser.UnaryExpr:
		return outLabels(e.Expr, ms)
	case *parser.StepInvariantExpr:
		return outLabels(e.Expr, ms)
	case *parser.Call:
		for _, a := range e.Args {
			if t := a.Type(); t == parser.ValueTypeVector || t == parser.ValueTypeMatrix {
				return outLabels(a, ms)
			}
		}
	case *parser.AggregateExpr:
		out := map[string]bool{}
		if e.Without {
			out = outLabels(e.Expr, ms)
		}
		for _, l := range e.Grouping {
			out[l] = !e.Without
		}
		maps.DeleteFunc(out, func(_ string, keep bool) bool { return !keep })
		return out
	case *parser.BinaryExpr:
		lhs, rhs := outLabels(e.LHS, ms), outLabels(e.RHS, ms)
		switch {
		case e.LHS.Type() != parser.ValueTypeVector:
			return rhs
		case e.RHS.Type() != parser.ValueTypeVector:
			return lhs
		case e.Op == parser.LOR:
			maps.DeleteFunc(lhs, func(l string, _ bool) bool { return !rhs[l] })
			return lhs
		case e.Op == parser.LAND || e.Op == parser.LUNLESS || e.Op.IsComparisonOperator() && !e.ReturnBool:
			return lhs // the left side's samples, as they are
		case e.VectorMatching != nil && e.VectorMatching.Card == parser.CardOneToOne && len(e.VectorMatching.MatchingLabels) > 0:
			on := e.VectorMatching.On
			maps.DeleteFunc(lhs, func(l string, _ bool) bool { return slices.Contains(e.VectorMatching.MatchingLabels, l) != on })
		}
		return lhs
	}
	return map[string]bool{}
}

// expandAnnotation expands an annotation as Prometheus does, for a sample
// with labels, failing on a label it does not have.
func expandAnnotation(text string, labels map[string]string) error {
	str := func(v any) string { return fmt.Sprint(v) }
	funcs := template.FuncMap{} // Prometheus's template functions, as far as a test needs them
	for _, name := range []string{"humanize", "humanize1024", "humanizeDuration", "humanizePercentage", "humanizeTimestamp",
		"title", "toUpper", "toLower", "stripPort", "stripDomain"} {
		funcs[name] = str
	}
	const defs = "{{$labels := .Labels}}{{$externalLabels := .ExternalLabels}}{{$externalURL := .ExternalURL}}{{$value := .Value}}"
	tmpl, err := template.New("").Option("missingkey=error").Funcs(funcs).Parse(defs + text)
	if err != nil {
		return err
	}
	data := struct {
		Labels, ExternalLabels map[string]string
		ExternalURL            string
		Value                  float64
	}{labels, map[string]string{}, "", 1}
	return tmpl.Execute(&bytes.Buffer{}, data)
}

// headingAnchors are the anchors GitHub gives the headings of a
// markdown file: lower case, punctuation dropped, spaces to hyphens, a
// number appended to repeats.
func headingAnchors(doc string) map[string]bool {
	out := map[string]bool{}
	count := map[string]int{}
	fenced := false
	for _, line := range strings.Split(doc, "\n") {
		if strings.HasPrefix(line, "```") {
			fenced = !fenced
		}
		title, ok := strings.CutPrefix(strings.TrimLeft(line, "#"), " ")
		if fenced || !ok || !strings.HasPrefix(line, "#") {
			continue
		}
		slug := strings.Map(func(r rune) rune {
			switch {
			case r == ' ':
				return '-'
			case r == '-' || r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r):
				return unicode.ToLower(r)
			}
			return -1
		}, strings.TrimSpace(title))
		if n := count[slug]; n > 0 {
			out[fmt.Sprintf("%s-%d", slug, n)] = true
		} else {
			out[slug] = true
		}
		count[slug]++
	}
	return out
}

var (
	// docAlertRow is a row of the alerts table: | `Name` | severity | ...
	docAlertRow = regexp.MustCompile("(?m)^\\| `(Wail[A-Za-z0-9]+)` \\| ([a-z]+) \\|")
	// docAlertNames are names of alerts anywhere in the docs.
	docAlertNames = regexp.MustCompile("`(Wail[A-Z][A-Za-z0-9]*)`")
)

// docSeverities are the alerts of the docs' table and their severity.
func docSeverities(doc string) map[string]string {
	out := map[string]string{}
	for _, m := range docAlertRow.FindAllStringSubmatch(doc, -1) {
		out[m[1]] = m[2]
	}
	return out
}

// loadsAlerts says whether doc shows a prometheus.yml (a ```yaml
// prometheus block) whose rule_files load wail-alerts.yml.
func loadsAlerts(doc string) bool {
	for _, block := range strings.Split(doc, "```yaml prometheus\n")[1:] {
		text, _, _ := strings.Cut(block, "```")
		var cfg struct {
			RuleFiles []string `yaml:"rule_files"`
		}
		if yaml.Unmarshal([]byte(text), &cfg) != nil {
			continue
		}
		for _, f := range cfg.RuleFiles {
			if strings.HasSuffix(f, "/wail-alerts.yml") || f == "wail-alerts.yml" {
				return true
			}
		}
	}
	return false
}

// TestAlertRulesPromtool: Prometheus's own checker takes the rules file
// (promtool check rules), and the alerts fire as their unit tests say
// (promtool test rules deploy/prometheus/wail-alerts.test.yml: series
// in, alerts with their labels and annotations out). promtool is
// WAIL_PROMTOOL, else where scripts/promtool.sh install puts it, else on
// PATH.
func TestAlertRulesPromtool(t *testing.T) {
	promtool := findPromtool()
	if promtool == "" {
		servicetest.Missing(t, "promtool is missing: run `bash scripts/promtool.sh install` (Debian's promtool, unpacked into /var/cache/wail-promtool), or set WAIL_PROMTOOL")
	}
	for _, args := range [][]string{
		{"check", "rules", alertsPath},
		{"test", "rules", "../../deploy/prometheus/wail-alerts.test.yml"},
	} {
		out, err := exec.Command(promtool, args...).CombinedOutput()
		if err != nil {
			t.Errorf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
}

func findPromtool() string {
	if p := os.Getenv("WAIL_PROMTOOL"); p != "" {
		return p
	}
	if _, err := os.Stat("/var/cache/wail-promtool/promtool"); err == nil {
		return "/var/cache/wail-promtool/promtool"
	}
	p, _ := exec.LookPath("promtool")
	return p
}
