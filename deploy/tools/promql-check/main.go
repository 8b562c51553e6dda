// promql-check parses PromQL expressions with Prometheus' own parser and reports, for each,
// the metric names it selects or the parse error. The deploy tests use it to check the
// Grafana dashboard and the alert rules against the metrics relay exports.
//
// Input (stdin): a JSON array of expressions. Output (stdout): a JSON array of
// {"expr": ..., "metrics": [...], "error": "..."} in the same order. Exit status 0 unless
// the input itself cannot be read; parse errors are reported per expression.
package main

import (
	"encoding/json"
	"fmt"
	"os"
	"sort"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"
)

type result struct {
	Expr    string   `json:"expr"`
	Metrics []string `json:"metrics"`
	Error   string   `json:"error,omitempty"`
}

// The parser with Prometheus' default options: what a stock Prometheus server accepts.
var promql = parser.NewParser(parser.Options{})

func check(expr string) result {
	out := result{Expr: expr, Metrics: []string{}}
	node, err := promql.ParseExpr(expr)
	if err != nil {
		out.Error = err.Error()
		return out
	}
	seen := map[string]bool{}
	parser.Inspect(node, func(n parser.Node, _ []parser.Node) error {
		if selector, ok := n.(*parser.VectorSelector); ok {
			name := selector.Name
			if name == "" {
				// {__name__="..."} form.
				for _, m := range selector.LabelMatchers {
					if m.Name == labels.MetricName && m.Type == labels.MatchEqual {
						name = m.Value
					}
				}
			}
			if name == "" {
				out.Error = "selector without a fixed metric name: " + selector.String()
			} else {
				seen[name] = true
			}
		}
		return nil
	})
	for name := range seen {
		out.Metrics = append(out.Metrics, name)
	}
	sort.Strings(out.Metrics)
	return out
}

func main() {
	var exprs []string
	if err := json.NewDecoder(os.Stdin).Decode(&exprs); err != nil {
		fmt.Fprintln(os.Stderr, "promql-check: stdin must be a JSON array of strings:", err)
		os.Exit(2)
	}
	results := make([]result, 0, len(exprs))
	for _, expr := range exprs {
		results = append(results, check(expr))
	}
	encoder := json.NewEncoder(os.Stdout)
	encoder.SetIndent("", "  ")
	if err := encoder.Encode(results); err != nil {
		fmt.Fprintln(os.Stderr, "promql-check:", err)
		os.Exit(1)
	}
}
