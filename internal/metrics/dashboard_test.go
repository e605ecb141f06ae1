package metrics

import (
	"encoding/json"
	"os"
	"regexp"
	"strings"
	"testing"
)

// dashboardPath is the Grafana dashboard that docs/metrics.md describes.
const dashboardPath = "../../docs/grafana/bulwark.json"

// metricName matches the names of Bulwark's and the client library's
// metrics in a PromQL expression.
var metricName = regexp.MustCompile(`\b(?:bulwark|go|process)_[a-z0-9_]+`)

// dashboardExpressions returns every PromQL expression of the dashboard:
// panel targets and template variable queries.
func dashboardExpressions(t *testing.T) []string {
	t.Helper()
	data, err := os.ReadFile(dashboardPath)
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
		Templating struct {
			List []struct {
				Definition string `json:"definition"`
			} `json:"list"`
		} `json:"templating"`
	}
	if err := json.Unmarshal(data, &dash); err != nil {
		t.Fatalf("%s: %v", dashboardPath, err)
	}
	var exprs []string
	for _, p := range dash.Panels {
		for _, target := range p.Targets {
			if target.Expr == "" {
				t.Errorf("panel %q has a target without an expression", p.Title)
			}
			exprs = append(exprs, target.Expr)
		}
	}
	for _, v := range dash.Templating.List {
		exprs = append(exprs, v.Definition)
	}
	return exprs
}

// exportedSeries returns the names of the series that Bulwark exports,
// with the _bucket, _sum and _count series of histograms, and the family
// name of each.
func exportedSeries(t *testing.T) map[string]string {
	t.Helper()
	families, err := NewRegistry(testSources()).Gather()
	if err != nil {
		t.Fatal(err)
	}
	series := map[string]string{}
	for _, f := range families {
		name := f.GetName()
		series[name] = name
		if f.GetType().String() == "HISTOGRAM" {
			for _, suffix := range []string{"_bucket", "_sum", "_count"} {
				series[name+suffix] = name
			}
		}
	}
	return series
}

func TestDashboardUsesExportedMetrics(t *testing.T) {
	series := exportedSeries(t)
	used := map[string]bool{}
	for _, expr := range dashboardExpressions(t) {
		for _, name := range metricName.FindAllString(expr, -1) {
			family, ok := series[name]
			if !ok {
				t.Errorf("dashboard expression uses %s, which Bulwark does not export: %s", name, expr)
				continue
			}
			used[family] = true
		}
	}
	for name, family := range series {
		if name == family && strings.HasPrefix(name, "bulwark_") && !used[name] {
			t.Errorf("no dashboard panel shows %s", name)
		}
	}
}
