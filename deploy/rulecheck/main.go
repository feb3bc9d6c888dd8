// Command rulecheck checks the hub's Prometheus alert rules with Prometheus's own code, as `promtool check rules`
// and `promtool test rules` do, without building the whole of promtool (which pulls in every service discovery).
// The module is pinned (go.mod) to the Prometheus that docker-compose.yml runs (prom/prometheus:v3.7.3 is module
// v0.307.3): move both together.
//
//	rulecheck check FILE...  parse and validate rule files (model/rulefmt: YAML fields, PromQL, templates) and
//	                         print every rule with the metric names its expression selects, as JSON
//	rulecheck test FILE...   run rule unit test files (promtool's format; unittest.go is promtool's own file)
//
// tests/test_alerts.py builds it (Go and the module proxy, nothing else) and runs both on deploy/prometheus/.
package main

import (
	"encoding/json"
	"fmt"
	"os"
	"sort"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/prometheus/prometheus/promql/promqltest"
)

type checkedRule struct {
	Group       string            `json:"group"`
	Alert       string            `json:"alert,omitempty"`
	Record      string            `json:"record,omitempty"`
	Expr        string            `json:"expr"`
	For         string            `json:"for"`
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations"`
	Metrics     []string          `json:"metrics"`
}

// metricNames are the metric names an expression selects (`foo`, `{__name__="foo"}`), sorted, once each.
func metricNames(expr parser.Expr) []string {
	seen := map[string]bool{}
	parser.Inspect(expr, func(node parser.Node, _ []parser.Node) error {
		if vs, ok := node.(*parser.VectorSelector); ok {
			if vs.Name != "" {
				seen[vs.Name] = true
			}
			for _, m := range vs.LabelMatchers {
				if m.Name == labels.MetricName && m.Type == labels.MatchEqual {
					seen[m.Value] = true
				}
			}
		}
		return nil
	})
	names := make([]string, 0, len(seen))
	for name := range seen {
		names = append(names, name)
	}
	sort.Strings(names)
	return names
}

func check(files []string) int {
	var out []checkedRule
	failed := false
	for _, file := range files {
		groups, errs := rulefmt.ParseFile(file, false, model.UTF8Validation)
		if len(errs) > 0 {
			failed = true
			for _, err := range errs {
				fmt.Fprintln(os.Stderr, err)
			}
			continue
		}
		for _, group := range groups.Groups {
			for _, rule := range group.Rules {
				expr, err := parser.ParseExpr(rule.Expr)
				if err != nil { // rulefmt parsed it already: cannot happen, but never print a partial answer
					fmt.Fprintf(os.Stderr, "%s: %s: %v\n", file, rule.Alert+rule.Record, err)
					failed = true
					continue
				}
				out = append(out, checkedRule{
					Group: group.Name, Alert: rule.Alert, Record: rule.Record, Expr: rule.Expr,
					For: rule.For.String(), Labels: rule.Labels, Annotations: rule.Annotations,
					Metrics: metricNames(expr),
				})
			}
		}
	}
	if failed {
		return 1
	}
	if err := json.NewEncoder(os.Stdout).Encode(out); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// Exit codes of promtool (cmd/promtool/main.go), which unittest.go returns.
const (
	successExitCode = 0
	failureExitCode = 1
)

func main() {
	if len(os.Args) < 3 || (os.Args[1] != "check" && os.Args[1] != "test") {
		fmt.Fprintln(os.Stderr, "usage: rulecheck check|test FILE...")
		os.Exit(2)
	}
	files := os.Args[2:]
	if os.Args[1] == "check" {
		os.Exit(check(files))
	}
	// As `promtool test rules` sets them; failures go to standard error.
	opts := promqltest.LazyLoaderOpts{EnableAtModifier: true, EnableNegativeOffset: true}
	os.Exit(RulesUnitTest(opts, nil, false, false, false, files...))
}
